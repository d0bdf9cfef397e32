//! The ledger and memory tools end to end: argument validation, tool errors, a panicking
//! tool, and every tool's result.

use super::*;

#[test]
fn unknown_tool_is_invalid_params_and_bad_arguments_are_tool_errors() {
    let l = ledger(true);
    l.append(&[NewEntry::new("p", "a", "{}")]).unwrap();
    let s = server_for(&l);
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "nope"}}),
    );
    assert_eq!(err_code(&r), codes::INVALID_PARAMS);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown tool: nope")
    );
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {}}),
    );
    assert_eq!(err_code(&r), codes::INVALID_PARAMS);

    for (name, args, needle) in [
        ("cortex_ledger_proof", json!("x"), "must be a JSON object"),
        (
            "cortex_ledger_proof",
            json!({}),
            "arguments.index is required",
        ),
        (
            "cortex_ledger_proof",
            json!({"index": "0"}),
            "must be integer",
        ),
        ("cortex_ledger_proof", json!({"index": -1}), "at least 0"),
        (
            "cortex_ledger_proof",
            json!({"index": 0.5}),
            "must be integer",
        ),
        (
            "cortex_ledger_proof",
            json!({"index": 0, "x": 1}),
            "not a known argument",
        ),
        (
            "cortex_ledger_checkpoint",
            json!({"force": true}),
            "not a known argument",
        ),
        (
            "cortex_ledger_verify",
            json!({"max_violations": "all"}),
            "must be integer",
        ),
        (
            "cortex_ledger_proof",
            json!({"index": 0}),
            "no checkpoint yet",
        ),
    ] {
        let res = tool_call(&s, name, args.clone());
        assert_eq!(res["isError"], true, "{name} {args}: {res}");
        let text = res["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(needle), "{name} {args}: {text}");
        assert!(res.get("structuredContent").is_none());
    }
    // Nothing was written by any of the bad calls.
    assert_eq!(l.head().unwrap().size, 1);
    assert!(l.store().latest_checkpoint().unwrap().is_none());
    assert!(l.store().integrity_checks(10).unwrap().is_empty());
}

#[test]
fn ledger_tools_resource_and_prompt_work_end_to_end() {
    let l = ledger(true);
    let entries: Vec<NewEntry> = (0..5)
        .map(|i| NewEntry::new("proj", "act", format!("{{\"i\":{i}}}")))
        .collect();
    l.append(&entries).unwrap();
    let s = server_for(&l);

    // The resource is listed, but there is no checkpoint to read yet (legacy code -32002).
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read",
                           "params": {"uri": ledger_tools::CHECKPOINT_URI}}),
    );
    assert_eq!(err_code(&r), codes::RESOURCE_NOT_FOUND);

    let cp = tool_call(&s, "cortex_ledger_checkpoint", json!({}));
    assert_eq!(cp["isError"], false, "{cp}");
    let sc = &cp["structuredContent"];
    assert_eq!(sc["created"], true);
    assert_eq!(sc["size"], 5);
    assert_eq!(sc["range"], json!({"start": 0, "end": 4, "count": 5}));
    let text: Value = serde_json::from_str(cp["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(&text, sc);
    let again = tool_call(&s, "cortex_ledger_checkpoint", json!({}));
    assert_eq!(again["structuredContent"]["created"], false);

    let v = tool_call(&s, "cortex_ledger_verify", json!({}));
    assert_eq!(v["isError"], false, "{v}");
    assert_eq!(v["structuredContent"]["valid"], true, "{v}");
    assert_eq!(v["structuredContent"]["entries_checked"], 5);
    assert_eq!(v["structuredContent"]["checkpoints_checked"], 1);

    let p = tool_call(&s, "cortex_ledger_proof", json!({"index": 3}));
    assert_eq!(p["isError"], false, "{p}");
    let file = ProofFile::parse(p["structuredContent"]["proof_text"].as_str().unwrap()).unwrap();
    let (entry, checkpoint) = file.verify(&[&FakeKey]).unwrap();
    assert_eq!(entry.detail, "{\"i\":3}");
    assert_eq!(checkpoint.size, 5);
    assert_eq!(p["structuredContent"]["tree_size"], 5);
    let missing = tool_call(&s, "cortex_ledger_proof", json!({"index": 99}));
    assert_eq!(missing["isError"], true);
    assert!(
        missing["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("no entry 99")
    );

    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 2, "method": "resources/list"}),
    );
    assert_eq!(
        r["result"]["resources"][0]["uri"],
        ledger_tools::CHECKPOINT_URI
    );
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read",
                           "params": {"uri": ledger_tools::CHECKPOINT_URI, "_meta": meta()}}),
    );
    let c = &r["result"]["contents"][0];
    assert_eq!(c["text"], sc["note"]);
    assert_eq!(r["result"]["resultType"], "complete");
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 4, "method": "resources/read",
                           "params": {"uri": "cortex://nope", "_meta": meta()}}),
    );
    assert_eq!(err_code(&r), codes::INVALID_PARAMS); // modern code for a missing resource
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 5, "method": "resources/read",
                           "params": {"uri": "cortex://nope"}}),
    );
    assert_eq!(err_code(&r), codes::RESOURCE_NOT_FOUND);

    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 6, "method": "prompts/list"}),
    );
    assert_eq!(r["result"]["prompts"][0]["name"], "cortex_audit_briefing");
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 7, "method": "prompts/get",
                           "params": {"name": "cortex_audit_briefing"}}),
    );
    let msg = r["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert!(msg.contains("5 entries") && msg.contains(ORIGIN), "{msg}");
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 8, "method": "prompts/get",
                           "params": {"name": "nope"}}),
    );
    assert_eq!(err_code(&r), codes::INVALID_PARAMS);
}

#[test]
fn a_panicking_tool_is_an_internal_error_and_the_server_keeps_going() {
    let s = server_for(&ledger(false));
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "boom"}}),
    );
    assert_eq!(err_code(&r), codes::INTERNAL_ERROR);
    assert!(r["error"]["message"].as_str().unwrap().contains("boom"));
    let r = call(&s, json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}));
    assert_eq!(r["result"], json!({}));
}

#[test]
fn checkpoint_without_a_key_is_a_tool_error() {
    let l = ledger(false);
    l.append(&[NewEntry::new("p", "a", "{}")]).unwrap();
    let s = server_for(&l);
    let r = tool_call(&s, "cortex_ledger_checkpoint", json!({}));
    assert_eq!(r["isError"], true);
    assert!(
        r["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("signing key")
    );
}

/// A memory server over a fresh in-memory store, and its ledger.
fn memory_server() -> (Arc<Ledger>, McpServer) {
    let store: DynStore = Arc::new(InMemoryStore::new());
    let options = LedgerOptions {
        hasher: None,
        checkpoint_every: 0,
    };
    let l = Arc::new(Ledger::open(store.clone(), options).unwrap());
    let b = McpServer::builder("cortex", "CORTEX", "0.0.0-test");
    let memory = Arc::new(AgentMemory::new(store, l.clone()).unwrap());
    let with_ledger =
        ledger_tools::register(b, l.clone(), Default::default(), Some(memory.clone()));
    let s = memory_tools::register(with_ledger, memory).build();
    (l, s)
}

#[test]
fn memory_tools_store_search_vote_deprecate_history() {
    let (l, s) = memory_server();
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    );
    let names: Vec<&str> = r["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for want in [
        "cortex_store",
        "cortex_search",
        "cortex_recall",
        "cortex_vote",
        "cortex_deprecate",
        "cortex_history",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }

    let one = tool_call(
        &s,
        "cortex_store",
        json!({"project": "p", "content": "Rust compiles to native code", "tags": ["rust"]}),
    );
    assert_eq!(one["isError"], false, "{one}");
    let id = one["structuredContent"]["facts"][0]["id"].as_u64().unwrap();
    let batch = tool_call(
        &s,
        "cortex_store",
        json!({"facts": [{"project": "p", "content": "SQLite runs in WAL mode"},
                         {"project": "q", "content": "Postgres follows later"}]}),
    );
    assert_eq!(batch["structuredContent"]["count"], 2, "{batch}");
    let size = l.head().unwrap().size;

    let hits = tool_call(
        &s,
        "cortex_search",
        json!({"query": "native rust", "project": "p"}),
    );
    assert_eq!(hits["isError"], false, "{hits}");
    assert_eq!(hits["structuredContent"]["hits"][0]["fact"]["id"], id);
    let rec = tool_call(&s, "cortex_recall", json!({"project": "p"}));
    assert_eq!(rec["structuredContent"]["count"], 2, "{rec}");

    // Bad input: tool errors, nothing written.
    for (name, args, needle) in [
        (
            "cortex_vote",
            json!({"fact_id": 999, "agent": "a", "vote": 1}),
            "no fact",
        ),
        (
            "cortex_vote",
            json!({"fact_id": id, "agent": "a", "vote": 2}),
            "must be one of",
        ),
        (
            "cortex_vote",
            json!({"fact_id": "x", "agent": "a", "vote": 1}),
            "must be integer",
        ),
        ("cortex_store", json!({"project": "p"}), "content"),
        (
            "cortex_store",
            json!({"project": "p", "content": "x", "confidence": 2}),
            "at most 1",
        ),
        (
            "cortex_store",
            json!({"facts": [], "project": "p"}),
            "at least 1",
        ),
        (
            "cortex_store",
            json!({"facts": [{"project": "p", "content": "ok"},
                                          {"project": "p", "content": " "}]}),
            "content",
        ),
        ("cortex_search", json!({"query": 5}), "must be string"),
        ("cortex_deprecate", json!({"fact_id": 12345}), "no fact"),
        ("cortex_history", json!({}), "exactly one"),
    ] {
        let res = tool_call(&s, name, args.clone());
        assert_eq!(res["isError"], true, "{name} {args}: {res}");
        let text = res["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(needle), "{name} {args}: {text}");
    }
    assert_eq!(l.head().unwrap().size, size, "bad input wrote nothing");

    let v = tool_call(
        &s,
        "cortex_vote",
        json!({"fact_id": id, "agent": "a1", "vote": 1,
                                                  "reason": "checked"}),
    );
    assert_eq!(v["isError"], false, "{v}");
    assert!(
        v["structuredContent"]["consensus"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    let d = tool_call(
        &s,
        "cortex_deprecate",
        json!({"fact_id": id, "reason": "superseded"}),
    );
    assert_eq!(
        d["structuredContent"]["fact"]["deprecation_reason"], "superseded",
        "{d}"
    );
    let h = tool_call(&s, "cortex_history", json!({"fact_id": id}));
    assert_eq!(
        h["structuredContent"]["entries"].as_array().unwrap().len(),
        3,
        "{h}"
    );
    let ph = tool_call(&s, "cortex_history", json!({"project": "p"}));
    assert_eq!(ph["structuredContent"]["count"], 2, "{ph}");
}

/// A memory server over `store` (so a test can tamper with it), and the memory.
fn memory_server_on(store: &Arc<InMemoryStore>) -> (Arc<AgentMemory>, McpServer) {
    let l = Arc::new(Ledger::open(store.clone(), LedgerOptions::default()).unwrap());
    let memory = Arc::new(AgentMemory::new(store.clone(), l.clone()).unwrap());
    let b = McpServer::builder("cortex", "CORTEX", "0.0.0-test");
    let with_ledger = ledger_tools::register(b, l, Default::default(), Some(memory.clone()));
    (
        memory.clone(),
        memory_tools::register(with_ledger, memory).build(),
    )
}

#[test]
fn writes_record_the_client_and_transport_as_author_in_both_eras() {
    let store = Arc::new(InMemoryStore::new());
    let (memory, s) = memory_server_on(&store);
    // Stateless era: the request's _meta names the client ("t"); the transport says http.
    let store_call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "cortex_store", "_meta": meta(),
        "arguments": {"project": "p", "content": "stateless fact"}}});
    let r = send_with(
        &s,
        Incoming {
            message: store_call.to_string(),
            transport: "http",
            ..Default::default()
        },
    )
    .unwrap();
    let f = &r["result"]["structuredContent"]["facts"][0];
    assert_eq!(
        (f["author"].as_str(), f["surface"].as_str()),
        (Some("t"), Some("mcp-http"))
    );
    // Handshake era: the session's initialize names the client; the transport says stdio.
    let init = json!({"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "claude-code", "version": "1"}}});
    let on_stdio = |m: Value| Incoming {
        message: m.to_string(),
        transport: "stdio",
        ..Default::default()
    };
    send_with(&s, on_stdio(init)).unwrap();
    let r = send_with(
        &s,
        on_stdio(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "cortex_vote", "arguments": {"fact_id": 0, "agent": "claude-code", "vote": -1}}})),
    )
    .unwrap();
    assert_eq!(r["result"]["isError"], false, "{r}");
    let h = memory.fact_history(0).unwrap();
    let d: cortex_core::memory::fact::VoteDetail =
        serde_json::from_str(&h.entries[1].detail).unwrap();
    assert_eq!(
        d.author,
        Some(cortex_core::memory::fact::Author::new(
            Some("claude-code"),
            "mcp-stdio"
        ))
    );
    // Search filters by author and consensus.
    let hits = tool_call(&s, "cortex_search", json!({"query": "fact", "author": "t"}));
    assert_eq!(hits["structuredContent"]["count"], 1, "{hits}");
    let hits = tool_call(
        &s,
        "cortex_search",
        json!({"query": "fact", "min_consensus": 0}),
    );
    assert_eq!(hits["structuredContent"]["count"], 0, "voted down: {hits}");
    let rec = tool_call(
        &s,
        "cortex_recall",
        json!({"project": "p", "author": "nobody"}),
    );
    assert_eq!(rec["structuredContent"]["count"], 0, "{rec}");
}

#[test]
fn forget_erases_and_verify_names_a_poisoned_fact() {
    use cortex_core::testkit::tamper::{Tamper, TamperOp};
    let store = Arc::new(InMemoryStore::new());
    let (memory, s) = memory_server_on(&store);
    let stored = tool_call(
        &s,
        "cortex_store",
        json!({"facts": [{"project": "p", "content": "carol's salary is 90k"},
                         {"project": "p", "content": "the build uses cargo"}]}),
    );
    assert_eq!(stored["isError"], false, "{stored}");
    let r = tool_call(&s, "cortex_forget", json!({"fact_id": 0}));
    assert_eq!(r["isError"], true, "a reason is required: {r}");
    let r = tool_call(
        &s,
        "cortex_forget",
        json!({"fact_id": 0, "reason": "GDPR request"}),
    );
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(r["structuredContent"]["fact"]["content"], "");
    assert!(r["structuredContent"]["fact"]["erased_at"].is_string());
    let hits = tool_call(&s, "cortex_search", json!({"query": "salary"}));
    assert_eq!(hits["structuredContent"]["count"], 0, "{hits}");
    let r = tool_call(
        &s,
        "cortex_forget",
        json!({"fact_id": 0, "reason": "again"}),
    );
    assert_eq!(r["isError"], true, "{r}");
    assert!(
        r["content"][0]["text"].as_str().unwrap().contains("erased"),
        "{r}"
    );

    let v = tool_call(&s, "cortex_ledger_verify", json!({}));
    assert_eq!(v["structuredContent"]["valid"], true, "{v}");
    assert_eq!(v["structuredContent"]["memory"]["facts_erased"], 1, "{v}");

    // An attacker rewrites a fact in the memory table: verify names it.
    let mut f = memory.fact(1).unwrap();
    f.content = "the build uses make".into();
    assert_eq!(
        store.apply(&[TamperOp::PutFact(f)]),
        cortex_core::testkit::tamper::Outcome::Done
    );
    let v = tool_call(&s, "cortex_ledger_verify", json!({}));
    let first = &v["structuredContent"]["violations"][0];
    assert_eq!(v["structuredContent"]["valid"], false, "{v}");
    assert_eq!(
        (
            first["kind"].as_str(),
            first["index"].as_u64(),
            first["fact_id"].as_u64(),
            first["column"].as_str()
        ),
        (Some("memory_mismatch"), Some(1), Some(1), Some("content")),
        "{v}"
    );
}

#[test]
fn a_client_name_that_cannot_be_an_author_is_a_clear_tool_error_and_writes_nothing() {
    let store = Arc::new(InMemoryStore::new());
    let (memory, s) = memory_server_on(&store);
    let mut m = meta();
    m["io.modelcontextprotocol/clientInfo"]["name"] = json!("bad\nname");
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "cortex_store", "_meta": m,
            "arguments": {"project": "p", "content": "x"}}}),
    );
    assert_eq!(r["result"]["isError"], true, "{r}");
    let text = r["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("clientInfo.name"), "{text}");
    assert!(text.contains("control character"), "{text}");
    assert_eq!(memory.ledger().head().unwrap().size, 0, "nothing written");
}
