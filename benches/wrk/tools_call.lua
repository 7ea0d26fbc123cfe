-- wrk script for benches/calls.rs: one MCP tools/call per request, no pipelining.
-- TOOL selects the call: job_status (of JOB_ID), run_eval (dry run) or start_canary (a distinct model each
-- time, so no call conflicts with another).

local tool = os.getenv("TOOL") or "job_status"
local job_id = os.getenv("JOB_ID") or ""
local threads = {}
local counter = 0
-- Replies that are JSON-RPC errors or isError tool results (wrk only counts non-2xx statuses).
failed = 0

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if body:find('"isError":true', 1, true) or body:find('"error":{', 1, true) then
    if failed == 0 then
      io.stderr:write("first failed reply: " .. body .. "\n")
    end
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("failed")
  end
  io.write(string.format("Failed tool calls: %d\n", total))
end

local function arguments()
  if tool == "job_status" then
    return string.format('{"jobId":"%s"}', job_id)
  elseif tool == "run_eval" then
    return '{"taskId":"demo","configId":"default","dryRun":true}'
  else
    return string.format(
      '{"modelId":"bench-%d-%d","fromGate":"stage","toGate":"production",'
        .. '"sloPolicy":{"latency_p95_ms":800,"error_rate":0.01}}', thread_id, counter)
  end
end

request = function()
  counter = counter + 1
  local body = string.format(
    '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"%s","arguments":%s}}',
    counter, tool, arguments())
  return wrk.format("POST", "/mcp", {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
  }, body)
end
