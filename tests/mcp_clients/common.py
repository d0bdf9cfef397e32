"""Checks shared by the network client scripts: what a user of the MCP server would notice."""

import json


def check_tools(names):
    assert names, "the server lists no tools"
    assert "cortex_ledger_verify" in names, f"cortex_ledger_verify missing from {names}"


def structured(result):
    """The structured content of a tool result, from the field or the text block."""
    data = getattr(result, "structured_content", None) or getattr(result, "structuredContent", None)
    if data is None and result.content:
        data = json.loads(result.content[0].text)
    return data


def check_verify(result):
    is_error = getattr(result, "is_error", None)
    if is_error is None:
        is_error = getattr(result, "isError", False)
    assert not is_error, f"cortex_ledger_verify failed: {result}"
    data = structured(result)
    assert data["valid"] is True, f"ledger not valid: {data}"
    return data


def check_unknown_tool_error(exc_or_result):
    """An unknown tool is an error the client sees (JSON-RPC error or isError result)."""
    if isinstance(exc_or_result, Exception):
        return str(exc_or_result)
    is_error = getattr(exc_or_result, "is_error", None)
    if is_error is None:
        is_error = getattr(exc_or_result, "isError", False)
    assert is_error, f"unknown tool did not fail: {exc_or_result}"
    return "isError"
