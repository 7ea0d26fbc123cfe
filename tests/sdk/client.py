"""Drives mcp-cockpit with the official Python MCP SDK over Streamable HTTP, with the API key header.

Usage: client.py <base-url> <api-key>. Exits non-zero (with the failed check) if anything is off; prints one
`ok:` line per check.
"""

import asyncio
import json
import sys
from datetime import timedelta

import anyio
import httpx
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from pydantic import AnyUrl


def check(condition, what):
    if not condition:
        raise SystemExit(f"python sdk FAILED: {what}")
    print(f"ok: {what}")


async def main(base: str, key: str) -> None:
    updates: list[str] = []
    logs: list[types.LoggingMessageNotificationParams] = []
    updated = anyio.Event()

    async def on_message(message) -> None:
        if isinstance(message, types.ServerNotification):
            root = message.root
            if isinstance(root, types.ResourceUpdatedNotification):
                updates.append(str(root.params.uri))
                updated.set()

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async with httpx.AsyncClient(headers={"X-API-Key": key}, timeout=httpx.Timeout(60, read=300)) as http:
        async with streamable_http_client(f"{base}/mcp", http_client=http) as (read, write, session_id):
            async with ClientSession(read, write, message_handler=on_message, logging_callback=on_log) as session:
                init = await session.initialize()
                check(init.serverInfo.name == "mcp-cockpit", "initialize names the server")
                check(init.capabilities.resources is not None and init.capabilities.resources.subscribe,
                      "resources can be subscribed")
                check(session_id() is not None, "a session id was issued")

                tools = await session.list_tools()
                names = {t.name for t in tools.tools}
                check({"run_eval", "job_status", "start_canary"} <= names, "tools/list has the cockpit tools")
                check(all(t.title and t.outputSchema for t in tools.tools), "every tool has a title and outputSchema")

                await session.send_ping()
                check(True, "ping")
                await session.set_logging_level("debug")
                check(True, "logging/setLevel debug")

                seen: list[float] = []

                async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                    seen.append(progress)

                result = await session.call_tool(
                    "run_eval",
                    {"taskId": "demo", "configId": "sdk-python", "wait": True},
                    read_timeout_seconds=timedelta(seconds=120),
                    progress_callback=on_progress,
                )
                job = result.structuredContent
                check(not result.isError and job["status"] == "completed", "run_eval with wait completes")
                check(len(seen) >= 3 and seen == sorted(seen) and len(set(seen)) == len(seen),
                      f"progress values arrive and increase: {seen}")

                uri = f"cockpit://job/{job['jobId']}"
                read_back = await session.read_resource(AnyUrl(uri))
                body = json.loads(read_back.contents[0].text)
                check(body["status"] == "completed", "resources/read returns the job")

                await session.subscribe_resource(AnyUrl(uri))
                await session.call_tool(
                    "publish_note", {"topic": f"job/{job['jobId']}", "message": "checked by the Python SDK test"}
                )
                with anyio.fail_after(60):
                    await updated.wait()
                check(uri in updates, "a subscribed job resource sends notifications/resources/updated")
                check(len(logs) > 0, "notifications/message arrive at the set level")
                await session.unsubscribe_resource(AnyUrl(uri))

                listed = await session.list_resources()
                check(any(r.uri == AnyUrl(uri) for r in listed.resources), "resources/list includes the job")
                templates = await session.list_resource_templates()
                check(len(templates.resourceTemplates) == 3, "three resource templates")
    check(True, "session closed (DELETE /mcp)")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
