"""Drives mcp-cockpit with the Python MCP SDK 2.x `Client` in its default `auto` mode: it must negotiate the
2026-07-28 revision (no initialize), list tools, run an eval to its end with `wait`, follow a second one with
job_status, read it as a resource, and hear its updates through `subscriptions/listen`.

Usage: client.py <base-url> <api-key>. Exits non-zero with the failed check; prints one `ok:` line per check.
"""

import asyncio
import json
import sys

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.subscriptions import ResourceUpdated


def check(condition, what):
    if not condition:
        raise SystemExit(f"python sdk 2 FAILED: {what}")
    print(f"ok: {what}")


async def main(base: str, key: str) -> None:
    http = create_mcp_http_client(headers={"X-API-Key": key})
    async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
        check(client.protocol_version == "2026-07-28", f"auto mode negotiated 2026-07-28 (got {client.protocol_version})")
        check(client.server_info is not None and client.server_info.name == "mcp-cockpit", "server/discover names the server")
        check("canar" in (client.instructions or ""), "the instructions mention canaries")

        tools = await client.list_tools()
        names = {t.name for t in tools.tools}
        check({"run_eval", "job_status", "start_canary"} <= names, "tools/list has the cockpit tools")

        waited = await client.call_tool("run_eval", {"taskId": "demo", "configId": "py2", "wait": True})
        check(waited.structured_content["status"] == "completed", "run_eval wait:true returns the finished job")

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
