"""Drives `cortex mcp start --transport sse` with the official Python SDK (mcp==2.3.0) over the
legacy HTTP+SSE transport (`sse_client`, initialize handshake). Usage: sse_client.py URL/sse."""

import asyncio
import json
import sys

from mcp.client import Client
from mcp.client.sse import sse_client

from common import check_tools, check_unknown_tool_error, check_verify


async def main(url: str) -> None:
    async with Client(sse_client(url), mode="legacy") as client:
        version = client.protocol_version
        tools = await client.list_tools()
        names = [t.name for t in tools.tools]
        check_tools(names)
        verify = check_verify(await client.call_tool("cortex_ledger_verify", {}))
        try:
            unknown = check_unknown_tool_error(await client.call_tool("no_such_tool", {}))
        except Exception as exc:
            unknown = check_unknown_tool_error(exc)
    print(json.dumps({"ok": True, "transport": "sse", "protocol_version": version,
                      "tools": len(names), "verify": verify.get("valid"), "unknown_tool": unknown[:80]}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
