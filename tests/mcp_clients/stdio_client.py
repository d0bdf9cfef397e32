"""Drives `cortex mcp start --transport stdio` with the official MCP Python SDK (mcp==2.3.0).

Usage: stdio_client.py MODE CORTEX_BIN [cortex args...]
MODE is `legacy` (initialize handshake), `2026-07-28` (stateless, pinned) or `auto` (the SDK
probes server/discover and must settle on the modern era). Every tool is called, the checkpoint
resource read and the prompt fetched; bad input must come back as tool errors or JSON-RPC errors.
Prints one JSON summary line on success; exits 1 with the failed assertion otherwise.
"""

import asyncio
import json
import sys
import traceback
import warnings

from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

EXPECTED_TOOLS = {
    "cortex_ledger_checkpoint", "cortex_ledger_verify", "cortex_ledger_proof",
    "cortex_store", "cortex_search", "cortex_recall", "cortex_vote", "cortex_deprecate",
    "cortex_history", "cortex_forget",
}


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def run(mode: str, command: str, args: list[str]) -> dict:
    params = StdioServerParameters(command=command, args=args)
    summary = {"mode": mode}
    async with Client(params, mode=mode, raise_exceptions=True) as client:
        summary["protocol_version"] = client.protocol_version
        if mode == "legacy":
            check(client.protocol_version == "2025-11-25", f"negotiated {client.protocol_version}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ping is legacy-only, which is what we test
                await client.send_ping()
        else:
            check(client.protocol_version == "2026-07-28", f"era {client.protocol_version}")

        tools = (await client.list_tools()).tools
        names = {t.name for t in tools}
        check(EXPECTED_TOOLS <= names, f"tools: {sorted(names)}")
        for t in tools:
            check(t.input_schema.get("type") == "object", f"{t.name} input schema")
            check(isinstance(t.output_schema, dict), f"{t.name} output schema")

        cp = await client.call_tool("cortex_ledger_checkpoint", {})
        check(not cp.is_error, f"checkpoint failed: {cp.content}")
        sc = cp.structured_content
        check(sc["size"] >= 3, f"checkpoint size {sc['size']}")
        check(json.loads(cp.content[0].text) == sc, "text content mirrors structuredContent")

        v = await client.call_tool("cortex_ledger_verify", {})
        check(not v.is_error, f"verify failed: {v.content}")
        check(v.structured_content["valid"] is True, f"verify: {v.structured_content}")
        check(v.structured_content["entries_checked"] == sc["size"], "verify covered every entry")

        p = await client.call_tool("cortex_ledger_proof", {"index": 1})
        check(not p.is_error, f"proof failed: {p.content}")
        ps = p.structured_content
        check(ps["proof_text"].startswith("c2sp.org/tlog-proof@v1\n"), "proof text header")
        check(ps["tree_size"] == sc["size"] and ps["checkpoint"] == sc["note"], "proof fields")

        # Bad input: tool errors, not protocol errors, and nothing written.
        for args, needle in [
            ({"index": "one"}, "must be integer"),
            ({"index": -1}, "at least 0"),
            ({}, "index is required"),
            ({"index": 10_000}, "no entry 10000"),
        ]:
            bad = await client.call_tool("cortex_ledger_proof", args)
            check(bad.is_error, f"proof {args} should be a tool error")
            check(needle in bad.content[0].text, f"proof {args}: {bad.content[0].text}")

        try:
            await client.call_tool("cortex_no_such_tool", {})
            raise AssertionError("unknown tool did not fail")
        except MCPError as e:
            check(e.error.code == -32602, f"unknown tool code {e.error.code}")
            check("Unknown tool" in e.error.message, e.error.message)

        resources = (await client.list_resources()).resources
        check(any(str(r.uri) == "cortex://ledger/checkpoint" for r in resources), "resource listed")
        res = await client.read_resource("cortex://ledger/checkpoint")
        check(res.contents[0].text == sc["note"], "resource holds the latest checkpoint")
        try:
            await client.read_resource("cortex://no/such/thing")
            raise AssertionError("unknown resource did not fail")
        except MCPError as e:
            want = -32002 if mode == "legacy" else -32602
            check(e.error.code == want, f"unknown resource code {e.error.code}")

        prompts = (await client.list_prompts()).prompts
        check(any(p.name == "cortex_audit_briefing" for p in prompts), "prompt listed")
        brief = await client.get_prompt("cortex_audit_briefing", {})
        check("entries" in brief.messages[0].content.text, "prompt text")

        after = await client.call_tool("cortex_ledger_checkpoint", {})
        check(after.structured_content["created"] is False, "bad calls wrote nothing")
        check(after.structured_content["size"] == sc["size"], "ledger size unchanged")
        # The memory tools: 1 + 2 stored facts, a vote and a deprecation = 5 ledger entries.
        one = await client.call_tool(
            "cortex_store", {"project": "sdk", "content": "The ledger is append-only", "tags": ["ledger"]}
        )
        check(not one.is_error, f"store: {one.content}")
        fact_id = one.structured_content["facts"][0]["id"]
        # Provenance: the SDK's declared client name and the transport are the author.
        stored = one.structured_content["facts"][0]
        check(stored["surface"] == "mcp-stdio", f"surface: {stored}")
        check(isinstance(stored["author"], str) and stored["author"], f"author: {stored}")
        batch = await client.call_tool(
            "cortex_store",
            {"facts": [{"project": "sdk", "content": "Checkpoints are signed notes"},
                       {"project": "sdk", "content": "Proofs follow RFC 9162"}]},
        )
        check(batch.structured_content["count"] == 2, f"batch: {batch.content}")
        hits = await client.call_tool("cortex_search", {"query": "append-only ledger", "project": "sdk"})
        check(hits.structured_content["hits"][0]["fact"]["id"] == fact_id, f"search: {hits.content}")
        recall = await client.call_tool("cortex_recall", {"project": "sdk"})
        check(recall.structured_content["count"] == 3, f"recall: {recall.content}")
        gone = batch.structured_content["facts"][1]["id"]
        forgot = await client.call_tool("cortex_forget", {"fact_id": gone, "reason": "sdk test"})
        check(not forgot.is_error and forgot.structured_content["fact"]["content"] == "",
              f"forget: {forgot.content}")
        after = await client.call_tool("cortex_search", {"query": "RFC 9162", "project": "sdk"})
        check(after.structured_content["count"] == 0, f"search after forget: {after.content}")
        after = await client.call_tool("cortex_recall", {"project": "sdk"})
        check(after.structured_content["count"] == 2, f"recall after forget: {after.content}")
        # The erasure changed the search statistics: search afresh before the cache check.
        hits = await client.call_tool("cortex_search", {"query": "append-only ledger", "project": "sdk"})
        # The query cache: a repeated search is a hit (read back with cortex_metrics).
        again = await client.call_tool("cortex_search", {"query": "append-only ledger", "project": "sdk"})
        check(again.structured_content == hits.structured_content, "cached search")
        metrics = await client.call_tool("cortex_metrics", {})
        check(metrics.structured_content["cache_hits"] >= 1, f"metrics: {metrics.content}")
        templates = (await client.list_resource_templates()).resource_templates
        check(any(t.uri_template == "cortex://projects/{project}/facts" for t in templates), "template listed")
        facts = await client.read_resource("cortex://projects/sdk/facts")
        check(json.loads(facts.contents[0].text)["count"] == 2, "project facts resource")
        briefing = await client.get_prompt("cortex_project_briefing", {"project": "sdk"})
        check("The ledger is append-only" in briefing.messages[0].content.text, "project briefing")
        missing = await client.call_tool("cortex_vote", {"fact_id": 999_999, "agent": "sdk", "vote": 1})
        check(missing.is_error and "no fact" in missing.content[0].text, "vote on a missing fact")
        wrong = await client.call_tool("cortex_vote", {"fact_id": fact_id, "agent": "sdk", "vote": "yes"})
        check(wrong.is_error, "vote with a wrong type")
        vote = await client.call_tool("cortex_vote", {"fact_id": fact_id, "agent": "sdk", "vote": 1, "reason": "seen"})
        check(not vote.is_error and vote.structured_content["consensus"] > 0, f"vote: {vote.content}")
        dep = await client.call_tool("cortex_deprecate", {"fact_id": fact_id, "reason": "test"})
        check(dep.structured_content["fact"]["deprecated_at"] is not None, f"deprecate: {dep.content}")
        hist = await client.call_tool("cortex_history", {"fact_id": fact_id})
        check(len(hist.structured_content["entries"]) == 3, f"history: {hist.content}")
        summary["ledger_size"] = dep.structured_content["entry_index"] + 1
        summary["tools"] = sorted(names)
        summary["checkpoint_size"] = sc["size"]
    return summary


def main() -> int:
    mode, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    try:
        summary = asyncio.run(run(mode, command, args))
    except BaseException as e:  # noqa: BLE001 - report any failure to the Rust test
        while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
            e = e.exceptions[0]
        traceback.print_exception(e, file=sys.stderr)
        print(f"FAILED ({mode}): {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
