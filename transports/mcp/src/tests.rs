//! Protocol-layer tests: JSON-RPC validation, both eras, batches, notifications, tools.

use super::*;
use crate::protocol::codes;
use crate::tools::{ledger as ledger_tools, memory as memory_tools};
use cortex_core::error::Result;
use cortex_core::in_memory::InMemoryStore;
use cortex_core::ledger::signer::{SignatureScheme, Signer, Verifier};
use cortex_core::ledger::{Ledger, LedgerOptions};
use cortex_core::{AgentMemory, DynStore, NewEntry, ProofFile};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

const ORIGIN: &str = "example.com/mcp-test";

/// A deterministic stand-in for Ed25519 (core cannot depend on the signer crate).
#[derive(Debug)]
struct FakeKey;

fn fake_sig(message: &[u8]) -> Vec<u8> {
    let h = Sha256::digest(message);
    [h.as_slice(), h.as_slice()].concat()
}

impl Signer for FakeKey {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Ed25519Note
    }
    fn key_name(&self) -> &str {
        ORIGIN
    }
    fn note_key_id(&self) -> Option<[u8; 4]> {
        Some([1, 2, 3, 4])
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(fake_sig(message))
    }
    fn verifier(&self) -> Box<dyn Verifier> {
        Box::new(FakeKey)
    }
}

impl Verifier for FakeKey {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Ed25519Note
    }
    fn key_name(&self) -> &str {
        ORIGIN
    }
    fn note_key_id(&self) -> Option<[u8; 4]> {
        Some([1, 2, 3, 4])
    }
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        if signature == fake_sig(message) {
            Ok(())
        } else {
            Err(cortex_core::Error::integrity("bad fake signature"))
        }
    }
}

struct Unpark(std::thread::Thread);
impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn ledger(signed: bool) -> Arc<Ledger> {
    let mut l = Ledger::open(
        Arc::new(InMemoryStore::new()),
        LedgerOptions {
            hasher: None,
            checkpoint_every: 0,
        },
    )
    .unwrap();
    if signed {
        l.add_signer(Arc::new(FakeKey)).unwrap();
    }
    Arc::new(l)
}

fn server_for(l: &Arc<Ledger>) -> McpServer {
    let b = McpServer::builder("cortex", "CORTEX", "0.0.0-test").instructions("test server");
    ledger_tools::register(b, l.clone(), vec![Arc::new(FakeKey)])
        .tool(Tool {
            name: "boom".into(),
            title: "panics".into(),
            description: "a tool that panics".into(),
            input_schema: json!({"type": "object"}),
            output_schema: json!({"type": "object"}),
            read_only: true,
            idempotent: true,
            exec: Exec::Inline,
            run: Arc::new(|_| panic!("boom")),
        })
        .build()
}

fn send_with(s: &McpServer, incoming: Incoming) -> Option<Value> {
    block_on(s.handle_message(&incoming)).map(|t| serde_json::from_str(&t).expect("reply is JSON"))
}

fn send(s: &McpServer, text: &str) -> Option<Value> {
    send_with(
        s,
        Incoming {
            message: text.into(),
            ..Default::default()
        },
    )
}

fn call(s: &McpServer, v: Value) -> Value {
    send(s, &v.to_string()).expect("a reply")
}

fn err_code(reply: &Value) -> i64 {
    reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {reply}"))
}

fn meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
           "io.modelcontextprotocol/clientCapabilities": {},
           "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}})
}

fn tool_call(s: &McpServer, name: &str, args: Value) -> Value {
    let r = call(
        s,
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
               "params": {"name": name, "arguments": args}}),
    );
    r["result"].clone()
}

#[test]
fn malformed_json_is_a_parse_error_with_null_id() {
    let s = server_for(&ledger(false));
    let r = send(&s, "{\"jsonrpc\": \"2.0\", \"id\": 1, ").unwrap();
    assert_eq!(err_code(&r), codes::PARSE_ERROR);
    assert_eq!(r["id"], Value::Null);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
}

#[test]
fn invalid_requests_name_the_problem() {
    let s = server_for(&ledger(false));
    let r = send(&s, "42").unwrap();
    assert_eq!(err_code(&r), codes::INVALID_REQUEST);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON object")
    );

    let r = call(&s, json!({"jsonrpc": "1.0", "id": 3, "method": "ping"}));
    assert_eq!(err_code(&r), codes::INVALID_REQUEST);
    assert_eq!(r["id"], 3);
    assert!(r["error"]["message"].as_str().unwrap().contains("2.0"));

    let r = call(&s, json!({"jsonrpc": "2.0", "id": 4, "method": 12}));
    assert_eq!(err_code(&r), codes::INVALID_REQUEST);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("method must be a string")
    );

    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"}),
    );
    assert_eq!(err_code(&r), codes::INVALID_REQUEST);
    assert_eq!(r["id"], Value::Null);

    let r = call(&s, json!({"jsonrpc": "2.0", "id": 5}));
    assert_eq!(err_code(&r), codes::INVALID_REQUEST);

    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": [1]}),
    );
    assert_eq!(err_code(&r), codes::INVALID_PARAMS);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must be an object")
    );
}

#[test]
fn unknown_method_is_method_not_found() {
    let s = server_for(&ledger(false));
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": "a", "method": "nope/never"}),
    );
    assert_eq!(err_code(&r), codes::METHOD_NOT_FOUND);
    assert_eq!(r["id"], "a");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope/never")
    );
}

#[test]
fn notifications_and_client_responses_get_no_reply() {
    let s = server_for(&ledger(false));
    for m in [
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}),
        json!({"jsonrpc": "2.0", "method": "no/such/notification"}),
        json!({"jsonrpc": "1.0", "method": "bad/version"}),
        json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "nope"}}),
        json!({"jsonrpc": "2.0", "id": 9, "result": {}}),
    ] {
        assert_eq!(send(&s, &m.to_string()), None, "{m}");
    }
}

#[test]
fn batches_reply_per_request_in_order() {
    let s = server_for(&ledger(false));
    let r = send(
        &s,
        &json!([
            {"jsonrpc": "2.0", "id": 1, "method": "ping"},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "nope"},
            17
        ])
        .to_string(),
    )
    .unwrap();
    let items = r.as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["id"], 1);
    assert_eq!(items[0]["result"], json!({}));
    assert_eq!(err_code(&items[1]), codes::METHOD_NOT_FOUND);
    assert_eq!(err_code(&items[2]), codes::INVALID_REQUEST);

    let r = send(&s, "[]").unwrap();
    assert_eq!(err_code(&r), codes::INVALID_REQUEST);
    assert!(
        send(
            &s,
            r#"[{"jsonrpc":"2.0","method":"notifications/initialized"}]"#
        )
        .is_none()
    );
}

#[test]
fn legacy_handshake_negotiates_the_version() {
    let s = server_for(&ledger(false));
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
    );
    let res = &r["result"];
    assert_eq!(res["protocolVersion"], "2025-06-18");
    assert_eq!(res["serverInfo"]["name"], "cortex");
    assert!(res["capabilities"]["tools"].is_object());
    assert!(res["capabilities"]["resources"].is_object());
    assert!(res["capabilities"]["prompts"].is_object());
    assert!(res.get("resultType").is_none());

    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 2, "method": "initialize",
               "params": {"protocolVersion": "1999-01-01", "capabilities": {}}}),
    );
    assert_eq!(r["result"]["protocolVersion"], "2025-11-25");

    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {}}),
    );
    assert_eq!(err_code(&r), codes::INVALID_PARAMS);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("protocolVersion")
    );

    let r = call(&s, json!({"jsonrpc": "2.0", "id": 4, "method": "ping"}));
    assert_eq!(r["result"], json!({}));
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
    );
    assert_eq!(r["result"]["tools"].as_array().unwrap().len(), 4);
    assert!(r["result"].get("resultType").is_none());
}

#[test]
fn modern_requests_are_stateless_with_meta() {
    let s = server_for(&ledger(false));
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta()}}),
    );
    let res = &r["result"];
    assert_eq!(res["resultType"], "complete");
    let versions = res["supportedVersions"].as_array().unwrap();
    assert!(versions.contains(&json!("2026-07-28")) && versions.contains(&json!("2025-11-25")));
    assert!(res["capabilities"]["tools"].is_object());
    assert!(res["ttlMs"].is_u64());
    assert_eq!(res["cacheScope"], "public");
    assert_eq!(
        res["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "cortex"
    );

    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": meta()}}),
    );
    assert_eq!(r["result"]["resultType"], "complete");
    for t in r["result"]["tools"].as_array().unwrap() {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert!(t["outputSchema"].is_object(), "{t}");
    }

    // ping was removed in 2026-07-28.
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {"_meta": meta()}}),
    );
    assert_eq!(err_code(&r), codes::METHOD_NOT_FOUND);
}

#[test]
fn modern_version_and_header_checks() {
    let s = server_for(&ledger(false));
    let mut m = meta();
    m["io.modelcontextprotocol/protocolVersion"] = json!("1900-01-01");
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": m}}),
    );
    assert_eq!(err_code(&r), codes::UNSUPPORTED_PROTOCOL_VERSION);
    assert_eq!(r["error"]["data"]["requested"], "1900-01-01");
    assert!(
        r["error"]["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28"))
    );

    let mut m = meta();
    m.as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": m}}),
    );
    assert_eq!(err_code(&r), codes::INVALID_PARAMS);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("clientCapabilities")
    );

    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "cortex_ledger_proof", "arguments": {"index": 0}, "_meta": meta()}})
    .to_string();
    let with = |v: Option<&str>, method: Option<&str>, name: Option<&str>| {
        send_with(
            &s,
            Incoming {
                message: body.clone(),
                protocol_version: v.map(Into::into),
                mcp_method: method.map(Into::into),
                mcp_name: name.map(Into::into),
                ..Default::default()
            },
        )
        .unwrap()
    };
    assert_eq!(
        err_code(&with(Some("2025-11-25"), None, None)),
        codes::HEADER_MISMATCH
    );
    assert_eq!(
        err_code(&with(None, Some("tools/list"), None)),
        codes::HEADER_MISMATCH
    );
    assert_eq!(
        err_code(&with(None, None, Some("other"))),
        codes::HEADER_MISMATCH
    );
    let ok = with(
        Some("2026-07-28"),
        Some("tools/call"),
        Some("cortex_ledger_proof"),
    );
    assert_eq!(ok["result"]["isError"], true, "{ok}"); // no checkpoint yet, but headers fine
    let b64 = with(None, None, Some("=?base64?Y29ydGV4X2xlZGdlcl9wcm9vZg==?="));
    assert!(b64.get("result").is_some(), "{b64}");

    // A modern header on a body without _meta.
    let r = send_with(
        &s,
        Incoming {
            message: json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}).to_string(),
            protocol_version: Some("2026-07-28".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(err_code(&r), codes::HEADER_MISMATCH);
}

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
    let s = memory_tools::register(ledger_tools::register(b, l.clone(), vec![]), memory).build();
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

/// A memory server over `store` recording into `metrics`, with the query cache on.
fn cached_server(store: &Arc<InMemoryStore>, metrics: &Arc<Metrics>) -> McpServer {
    let l = Arc::new(
        Ledger::open(
            store.clone(),
            LedgerOptions {
                hasher: None,
                checkpoint_every: 0,
            },
        )
        .unwrap(),
    );
    let memory = Arc::new(AgentMemory::new(store.clone(), l.clone()).unwrap());
    let b = McpServer::builder("cortex", "CORTEX", "0.0.0-test").metrics(metrics.clone());
    memory_tools::register(ledger_tools::register(b, l, vec![]), memory).build()
}

fn hit_ids(r: &Value) -> Vec<u64> {
    r["structuredContent"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["fact"]["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn query_cache_hits_on_repeat_and_misses_after_a_write_from_another_server() {
    let store = Arc::new(InMemoryStore::new());
    let metrics = Arc::new(Metrics::new());
    let a = cached_server(&store, &metrics);
    // A second server (a second ledger object, as another process would have) on the same store.
    let b = cached_server(&store, &Arc::new(Metrics::new()));
    let first = tool_call(
        &a,
        "cortex_store",
        json!({"project": "p", "content": "Rust compiles to native code"}),
    );
    let id1 = first["structuredContent"]["facts"][0]["id"]
        .as_u64()
        .unwrap();

    let q = json!({"query": "native Rust", "project": "p"});
    let r1 = tool_call(&a, "cortex_search", q.clone());
    assert_eq!(hit_ids(&r1), vec![id1]);
    assert_eq!(metrics.snapshot().cache_misses, 1);
    // Repeat, and the same query normalized differently (case, spacing): hits.
    let r2 = tool_call(&a, "cortex_search", q.clone());
    assert_eq!(r2, r1);
    let r3 = tool_call(
        &a,
        "cortex_search",
        json!({"query": "  NATIVE   rust ", "project": "p"}),
    );
    assert_eq!(hit_ids(&r3), vec![id1]);
    let snap = metrics.snapshot();
    assert_eq!((snap.cache_hits, snap.cache_misses), (2, 1), "{snap:?}");
    assert!(snap.cache_hit_rate > 0.6);
    let rec = tool_call(&a, "cortex_recall", json!({"project": "p"}));
    assert_eq!(rec["structuredContent"]["count"], 1);
    assert_eq!(tool_call(&a, "cortex_recall", json!({"project": "p"})), rec);

    // A write through the OTHER server: the next read on `a` misses and sees it.
    let second = tool_call(
        &b,
        "cortex_store",
        json!({"project": "p", "content": "native binaries start fast in Rust"}),
    );
    let id2 = second["structuredContent"]["facts"][0]["id"]
        .as_u64()
        .unwrap();
    let misses = metrics.snapshot().cache_misses;
    let r4 = tool_call(&a, "cortex_search", q.clone());
    let mut ids = hit_ids(&r4);
    ids.sort_unstable();
    assert_eq!(ids, vec![id1, id2], "{r4}");
    assert_eq!(metrics.snapshot().cache_misses, misses + 1);
    let rec2 = tool_call(&a, "cortex_recall", json!({"project": "p"}));
    assert_eq!(rec2["structuredContent"]["count"], 2, "{rec2}");

    // A vote and a deprecation through the other server are seen as well.
    tool_call(&b, "cortex_deprecate", json!({"fact_id": id2}));
    assert_eq!(
        hit_ids(&tool_call(&a, "cortex_search", q.clone())),
        vec![id1]
    );
    let v = tool_call(
        &b,
        "cortex_vote",
        json!({"fact_id": id1, "agent": "x", "vote": -1}),
    );
    let consensus = v["structuredContent"]["consensus"].as_f64().unwrap();
    let r5 = tool_call(&a, "cortex_search", q);
    assert_eq!(
        r5["structuredContent"]["hits"][0]["fact"]["consensus"].as_f64(),
        Some(consensus),
        "{r5}"
    );

    // Errors are not cached and count as errors.
    let bad = tool_call(&a, "cortex_search", json!({"query": "!!!"}));
    assert_eq!(bad["isError"], true);
    let snap = metrics.snapshot();
    assert!(snap.errors["mcp"]["cortex_search"] >= 1, "{snap:?}");
}

#[test]
fn explicit_as_of_search_is_cached_and_still_exact() {
    let store = Arc::new(InMemoryStore::new());
    let metrics = Arc::new(Metrics::new());
    let a = cached_server(&store, &metrics);
    tool_call(
        &a,
        "cortex_store",
        json!({"project": "p", "content": "alpha beta"}),
    );
    let q = json!({"query": "alpha", "as_of": "2999-01-01"});
    assert_eq!(hit_ids(&tool_call(&a, "cortex_search", q.clone())).len(), 1);
    assert_eq!(hit_ids(&tool_call(&a, "cortex_search", q.clone())).len(), 1);
    assert_eq!(metrics.snapshot().cache_hits, 1);
    tool_call(
        &a,
        "cortex_store",
        json!({"project": "q", "content": "alpha gamma"}),
    );
    assert_eq!(hit_ids(&tool_call(&a, "cortex_search", q)).len(), 2);
}

#[test]
fn metrics_tool_reports_requests_latency_errors_and_cache() {
    let store = Arc::new(InMemoryStore::new());
    let metrics = Arc::new(Metrics::new());
    let s = cached_server(&store, &metrics);
    let list = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    );
    let tool = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "cortex_metrics")
        .expect("cortex_metrics is listed")
        .clone();
    assert_eq!(tool["outputSchema"]["type"], "object");
    tool_call(
        &s,
        "cortex_store",
        json!({"project": "p", "content": "one fact"}),
    );
    tool_call(&s, "cortex_search", json!({"query": "fact"}));
    tool_call(&s, "cortex_search", json!({"query": "fact"}));
    tool_call(
        &s,
        "cortex_vote",
        json!({"fact_id": 999, "agent": "a", "vote": 1}),
    );
    call(&s, json!({"jsonrpc": "2.0", "id": 2, "method": "no/such"}));
    let m = tool_call(&s, "cortex_metrics", json!({}));
    assert_eq!(m["isError"], false, "{m}");
    let problems = schema::validate(&tool["outputSchema"], &m["structuredContent"]);
    assert!(problems.is_empty(), "{problems:?}");
    let sc = &m["structuredContent"];
    assert_eq!(sc["requests"]["mcp"]["cortex_store"], 1, "{sc}");
    assert_eq!(sc["requests"]["mcp"]["cortex_search"], 2, "{sc}");
    assert_eq!(sc["requests"]["mcp"]["tools/list"], 1, "{sc}");
    assert_eq!(sc["requests"]["mcp"]["other"], 1, "{sc}");
    assert_eq!(sc["errors"]["mcp"]["cortex_vote"], 1, "{sc}");
    assert_eq!(sc["errors"]["mcp"]["other"], 1, "{sc}");
    assert_eq!(sc["cache_hits"], 1, "{sc}");
    assert_eq!(sc["cache_misses"], 1, "{sc}");
    assert_eq!(sc["cache_hit_rate"], 0.5, "{sc}");
    assert!(sc["latency_count"].as_u64().unwrap() >= 6, "{sc}");
    assert_eq!(sc["latency_buckets"].as_array().unwrap().len(), 14);
    let text = metrics.render_prometheus();
    assert!(text.contains("cortex_requests_total{transport=\"mcp\",method=\"cortex_search\"} 2"));
    assert!(text.contains("cortex_cache_hits_total 1"));
    assert!(s.check_health().is_ok());
}

#[test]
fn project_facts_template_and_briefing_prompt() {
    let store = Arc::new(InMemoryStore::new());
    let s = cached_server(&store, &Arc::new(Metrics::new()));
    tool_call(
        &s,
        "cortex_store",
        json!({"facts": [
            {"project": "my proj", "content": "Deploys run on Fridays", "tags": ["ops"]},
            {"project": "other", "content": "Not this one"}]}),
    );
    let t = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "resources/templates/list"}),
    );
    let templates = t["result"]["resourceTemplates"].as_array().unwrap();
    assert!(
        templates
            .iter()
            .any(|t| t["uriTemplate"] == "cortex://projects/{project}/facts"),
        "{t}"
    );
    // The checkpoint resource is still listed.
    let r = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 2, "method": "resources/list"}),
    );
    assert_eq!(
        r["result"]["resources"][0]["uri"],
        "cortex://ledger/checkpoint"
    );

    let read = |uri: &str| {
        call(
            &s,
            json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read",
                   "params": {"uri": uri}}),
        )
    };
    let got = read("cortex://projects/my%20proj/facts");
    let content = &got["result"]["contents"][0];
    assert_eq!(content["uri"], "cortex://projects/my%20proj/facts", "{got}");
    assert_eq!(content["mimeType"], "application/json");
    let body: Value = serde_json::from_str(content["text"].as_str().unwrap()).unwrap();
    assert_eq!(body["project"], "my proj");
    assert_eq!(body["count"], 1);
    assert_eq!(body["facts"][0]["content"], "Deploys run on Fridays");
    let empty = read("cortex://projects/nobody/facts");
    assert!(
        empty["result"]["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("\"count\":0")
    );
    // Not matching the template: resource not found (legacy code).
    for bad in [
        "cortex://projects//facts",
        "cortex://projects/a/b/facts",
        "cortex://x",
    ] {
        assert_eq!(err_code(&read(bad)), codes::RESOURCE_NOT_FOUND, "{bad}");
    }

    let list = call(
        &s,
        json!({"jsonrpc": "2.0", "id": 4, "method": "prompts/list"}),
    );
    let p = list["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cortex_project_briefing")
        .expect("briefing listed")
        .clone();
    assert_eq!(p["arguments"][0]["name"], "project");
    assert_eq!(p["arguments"][0]["required"], true);
    let get = |args: Value| {
        call(
            &s,
            json!({"jsonrpc": "2.0", "id": 5, "method": "prompts/get",
                   "params": {"name": "cortex_project_briefing", "arguments": args}}),
        )
    };
    let g = get(json!({"project": "my proj"}));
    let text = g["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert!(text.contains("Deploys run on Fridays"), "{text}");
    assert!(text.contains("[ops]"), "{text}");
    assert!(!text.contains("Not this one"), "{text}");
    assert_eq!(g["result"]["messages"][0]["role"], "user");
    let none = get(json!({"project": "empty"}));
    assert!(
        none["result"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("no current facts")
    );
    assert_eq!(err_code(&get(json!({}))), codes::INVALID_PARAMS);
    assert_eq!(
        err_code(&get(json!({"project": " "}))),
        codes::INVALID_PARAMS
    );
}

#[test]
fn resource_templates_match_one_segment_per_variable() {
    let t = ResourceTemplate {
        uri_template: "cortex://projects/{project}/facts".into(),
        name: String::new(),
        title: String::new(),
        description: String::new(),
        mime_type: String::new(),
        read: Arc::new(|_| Ok(String::new())),
    };
    assert_eq!(
        t.matches("cortex://projects/a%2Fb/facts").unwrap()["project"],
        "a/b"
    );
    assert!(t.matches("cortex://projects/a/factsx").is_none());
    assert!(t.matches("cortex://projects/%zz/facts").is_none());
    let tail = ResourceTemplate {
        uri_template: "x://{a}".into(),
        ..t
    };
    assert_eq!(tail.matches("x://v").unwrap()["a"], "v");
    assert!(tail.matches("x://").is_none());
}
