"""Drives mcp-cockpit with fastmcp's client through the whole flow: discover, tools, an eval run to its end,
a canary started and explained, a resource read, a prompt rendered and a completion offered.

Usage: fastmcp_client.py <base-url> <api-key>. Exits non-zero with the failed check; prints one `ok:` line per
check.
"""

import asyncio
import json
import sys

import mcp_types
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport


def check(condition, what):
    if not condition:
        raise SystemExit(f"fastmcp FAILED: {what}")
    print(f"ok: {what}")


async def main(base: str, key: str) -> None:
    transport = StreamableHttpTransport(f"{base}/mcp", headers={"X-API-Key": key})
    async with Client(transport) as client:
        check(client.protocol_version == "2026-07-28", f"negotiated 2026-07-28 (got {client.protocol_version})")
        tools = {t.name for t in await client.list_tools()}
        check({"run_eval", "start_canary", "why"} <= tools, "the cockpit tools are listed")

        ran = await client.call_tool("run_eval", {"taskId": "demo", "configId": "fastmcp", "wait": True})
        check(ran.structured_content["status"] == "completed", "run_eval wait:true runs the eval to its end")

        policy = {"latency_p95_ms": 800, "error_rate": 0.01, "interval": "1s", "successesToPromote": 1}
        started = await client.call_tool(
            "start_canary",
            {"modelId": "fastmcp-model", "fromGate": "stage", "toGate": "production", "sloPolicy": policy},
        )
        canary = started.structured_content["canaryId"]
        check(started.structured_content["status"] == "running", "start_canary starts a canary")
        for _ in range(100):
            status = (await client.call_tool("canary_status", {"canaryId": canary})).structured_content
            if status["status"] != "running":
                break
            await asyncio.sleep(0.2)
        check(status["status"] == "promoted", f"the canary is promoted on the stub's healthy numbers ({status['status']})")
        why = await client.call_tool("why", {"id": canary})
        check(why.structured_content, "why explains the decision")

        read = await client.read_resource(f"cockpit://canary/{canary}")
        check(json.loads(read[0].text)["canaryId"] == canary, "resources/read returns the canary")

        prompts = {p.name for p in await client.list_prompts()}
        check(prompts == {"evaluate", "safe_promotion", "explain_canary"}, "the prompts are listed")
        rendered = await client.get_prompt("explain_canary", {"canaryId": canary})
        check(canary in rendered.messages[0].content.text, "a prompt renders with its argument")
        offered = await client.complete(
            mcp_types.PromptReference(type="ref/prompt", name="explain_canary"),
            {"name": "canaryId", "value": "canary_"},
        )
        check(canary in offered.values, "completion offers the canary id")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
