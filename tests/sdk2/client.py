"""Drives mcp-cockpit with the Python MCP SDK 2.x `Client` in its default `auto` mode: it must negotiate the
2026-07-28 revision (no initialize), list tools, run an eval to its end with `wait`, follow a second one with
job_status, read it as a resource, hear its updates through `subscriptions/listen`, complete a run_eval
taskId, and run evals as tasks through a `ClientExtension` for `io.modelcontextprotocol/tasks` (the SDK ships
the extension hooks, not the extension): one polled to its end, one cancelled.

Usage: client.py <base-url> <api-key>. Exits non-zero with the failed check; prints one `ok:` line per check.
"""

import asyncio
import json
import sys
from typing import Any, ClassVar, Literal

import mcp_types
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from pydantic import Field
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.subscriptions import ResourceUpdated


TASKS = "io.modelcontextprotocol/tasks"


class TaskParams(mcp_types.RequestParams):
    task_id: str = Field(alias="taskId")


class GetTask(mcp_types.Request[TaskParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param: ClassVar[str | None] = "taskId"


class CancelTask(mcp_types.Request[TaskParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    name_param: ClassVar[str | None] = "taskId"


class CreatedTask(mcp_types.Result):
    result_type: Literal["task"] = Field(alias="resultType")
    task_id: str = Field(alias="taskId")
    status: str
    poll_interval_ms: int | None = Field(alias="pollIntervalMs", default=None)


class PolledTask(mcp_types.Result):
    task_id: str = Field(alias="taskId")
    status: str
    poll_interval_ms: int | None = Field(alias="pollIntervalMs", default=None)
    result: dict[str, Any] | None = None


class Tasks(ClientExtension):
    """Resolves a task answer by polling tasks/get to its end; `cancel_first` cancels it instead."""

    identifier = TASKS

    def __init__(self) -> None:
        self.cancel_next = False
        self.seen: list[str] = []

    def claims(self):
        return [ResultClaim(result_type="task", model=CreatedTask, resolve=self.resolve)]

    async def resolve(self, created: CreatedTask, ctx: ClaimContext) -> mcp_types.CallToolResult:
        self.seen.append(created.task_id)
        params = TaskParams(taskId=created.task_id)
        if self.cancel_next:
            await ctx.session.send_request(CancelTask(params=params), mcp_types.EmptyResult)
        while True:
            polled = await ctx.session.send_request(GetTask(params=params), PolledTask)
            if polled.status == "completed":
                return mcp_types.CallToolResult.model_validate(polled.result)
            if polled.status in ("cancelled", "failed"):
                return mcp_types.CallToolResult(content=[], is_error=True, structured_content={"status": polled.status})
            await asyncio.sleep((polled.poll_interval_ms or 1000) / 1000)


def check(condition, what):
    if not condition:
        raise SystemExit(f"python sdk 2 FAILED: {what}")
    print(f"ok: {what}")


async def main(base: str, key: str) -> None:
    http = create_mcp_http_client(headers={"X-API-Key": key})
    tasks = Tasks()
    async with Client(streamable_http_client(f"{base}/mcp", http_client=http), extensions=[tasks]) as client:
        check(client.protocol_version == "2026-07-28", f"auto mode negotiated 2026-07-28 (got {client.protocol_version})")
        check(client.server_info is not None and client.server_info.name == "mcp-cockpit", "server/discover names the server")
        check("canar" in (client.instructions or ""), "the instructions mention canaries")

        tools = await client.list_tools()
        names = {t.name for t in tools.tools}
        check({"run_eval", "job_status", "start_canary"} <= names, "tools/list has the cockpit tools")

        waited = await client.call_tool("run_eval", {"taskId": "demo", "configId": "py2", "wait": True})
        check(waited.structured_content["status"] == "completed", "run_eval wait:true returns the finished job")
        check(len(tasks.seen) == 1 and tasks.seen[0].startswith("job_"), "it ran as a task, polled with tasks/get")
        tasks.cancel_next = True
        cancelled = await client.call_tool("run_eval", {"taskId": "ninety", "configId": "py2", "wait": True})
        check(cancelled.structured_content == {"status": "cancelled"}, "tasks/cancel cancels the task")
        job = (await client.call_tool("job_status", {"jobId": tasks.seen[1]})).structured_content
        check(job["status"] == "cancelled", "the job behind the cancelled task is cancelled")
        offered = await client.complete(
            mcp_types.PromptReference(type="ref/prompt", name="evaluate"), {"name": "taskId", "value": "de"}
        )
        check(offered.completion.values == ["demo"], "completion offers run_eval task ids")

        started = await client.call_tool("run_eval", {"taskId": "demo", "configId": "py2"})
        job_id = started.structured_content["jobId"]
        uri = f"cockpit://job/{job_id}"
        async with client.listen(resource_subscriptions=[uri]) as subscription:
            check(list(subscription.honored.resource_subscriptions or []) == [uri], "listen honours the job's URI")
            async for event in subscription:
                if isinstance(event, ResourceUpdated) and event.uri == uri:
                    break
        check(True, "subscriptions/listen delivered an update of the job")

        for _ in range(200):
            status = (await client.call_tool("job_status", {"jobId": job_id})).structured_content
            if status["status"] == "completed":
                break
            await asyncio.sleep(0.1)
        check(status["status"] == "completed", "job_status follows the job to its end")
        read = await client.read_resource(uri)
        check(json.loads(read.contents[0].text)["jobId"] == job_id, "resources/read returns the job")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
