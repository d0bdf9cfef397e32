"""Drives `cortex mcp start --transport ws` with the official Python SDK's WebSocket client
(mcp[ws]==1.30.0, subprotocol `mcp`). Usage: ws_client.py ws://HOST:PORT/mcp."""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.websocket import websocket_client

from common import check_tools, check_unknown_tool_error, check_verify


async def main(url: str) -> None:
    async with websocket_client(url) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            names = [t.name for t in tools.tools]
            check_tools(names)
            verify = check_verify(await session.call_tool("cortex_ledger_verify", {}))
            try:
                unknown = check_unknown_tool_error(await session.call_tool("no_such_tool", {}))
            except Exception as exc:
                unknown = check_unknown_tool_error(exc)
    print(json.dumps({"ok": True, "transport": "ws", "protocol_version": init.protocolVersion,
                      "tools": len(names), "verify": verify.get("valid"), "unknown_tool": unknown[:80]}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
