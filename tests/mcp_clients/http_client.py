"""Drives `cortex mcp start --transport http` with the official Python SDK (mcp==2.3.0) over
Streamable HTTP. Usage: http_client.py URL [auto|legacy]. Prints one JSON line and exits 0."""

import asyncio
import json
import sys

from mcp.client import Client

from common import check_tools, check_unknown_tool_error, check_verify


async def main(url: str, mode: str) -> None:
    async with Client(url, mode=mode) as client:
        version = client.protocol_version
        tools = await client.list_tools()
        names = [t.name for t in tools.tools]
        check_tools(names)
        verify = check_verify(await client.call_tool("cortex_ledger_verify", {}))
        try:
            unknown = check_unknown_tool_error(await client.call_tool("no_such_tool", {}))
        except Exception as exc:  # a JSON-RPC error is as good as an isError result
            unknown = check_unknown_tool_error(exc)
    print(json.dumps({"ok": True, "mode": mode, "protocol_version": version, "tools": len(names),
                      "verify": verify.get("valid"), "unknown_tool": unknown[:80]}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "auto"))
