// Drives mcp-cockpit with the official TypeScript MCP SDK client over Streamable HTTP, with the API key
// header. Usage: node client.mjs <base-url> <api-key>. Exits non-zero on the first failed check.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

const [base, key] = process.argv.slice(2);

function check(condition, what) {
  if (!condition) {
    console.error(`typescript sdk FAILED: ${what}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
  requestInit: { headers: { "X-API-Key": key } },
});
const client = new Client({ name: "cockpit-sdk-test", version: "1.0.0" });
const logs = [];
let resolveUpdate;
const updated = new Promise((resolve) => (resolveUpdate = resolve));
client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => logs.push(n.params));
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => resolveUpdate(n.params.uri));

await client.connect(transport);
check(client.getServerVersion()?.name === "mcp-cockpit", "initialize names the server");
check(transport.sessionId, "a session id was issued");

const { tools } = await client.listTools();
const names = new Set(tools.map((t) => t.name));
check(["run_eval", "job_status", "start_canary"].every((n) => names.has(n)), "tools/list has the cockpit tools");
check(tools.every((t) => t.title && t.outputSchema && t.annotations), "every tool has a title, outputSchema, annotations");

await client.ping();
check(true, "ping");
await client.setLoggingLevel("debug");
check(true, "logging/setLevel debug");

const seen = [];
const result = await client.callTool(
  { name: "run_eval", arguments: { taskId: "demo", configId: "sdk-ts", wait: true } },
  undefined,
  { onprogress: (p) => seen.push(p.progress), timeout: 120000 },
);
const job = result.structuredContent;
check(!result.isError && job.status === "completed", "run_eval with wait completes");
const increasing = seen.every((v, i) => i === 0 || v > seen[i - 1]);
check(seen.length >= 3 && increasing, `progress values arrive and increase: ${JSON.stringify(seen)}`);

const uri = `cockpit://job/${job.jobId}`;
const read = await client.readResource({ uri });
check(JSON.parse(read.contents[0].text).status === "completed", "resources/read returns the job");

await client.subscribeResource({ uri });
await client.callTool({
  name: "publish_note",
  arguments: { topic: `job/${job.jobId}`, message: "checked by the TypeScript SDK test" },
});
const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("no update within 60 s")), 60000));
const updatedUri = await Promise.race([updated, timeout]);
check(updatedUri === uri, "a subscribed job resource sends notifications/resources/updated");
check(logs.length > 0, "notifications/message arrive at the set level");
await client.unsubscribeResource({ uri });

const { resources } = await client.listResources();
check(resources.some((r) => r.uri === uri), "resources/list includes the job");
const { resourceTemplates } = await client.listResourceTemplates();
check(resourceTemplates.length === 3, "three resource templates");

await transport.terminateSession();
check(true, "session closed (DELETE /mcp)");
await client.close();
