//! The MCP query cache across processes, and the shared metrics and `/health` of
//! `cortex mcp start`:
//! - two `cortex mcp start --transport stdio` processes on one SQLite database: a search and a
//!   recall repeated on the first are cache hits (read back with `cortex_metrics`); a fact stored
//!   through the second is seen by the first's next search and recall (a miss), because every
//!   lookup reads the database's memory version;
//! - `cortex mcp start --transport http`: `/metrics` shows the MCP server's per-tool counters
//!   and cache counters beside the transport's (one shared `Metrics`), `/health` reports the
//!   database reachable.

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::stdio::StdioMcp;

fn cortex(home: &Path) -> Command {
    common::cortex_in(
        home,
        &["CORTEX_MCP_CACHE_ENTRIES", "CORTEX_MCP_CACHE_NOW_TTL_MS"],
    )
}

/// A fresh home with a one-entry ledger (the first append creates the database and key).
fn home() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = cortex(dir.path())
        .args(["ledger", "append", "--project", "t", "--action", "init"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// A stdio server on `home` whose cache entries go stale only by the memory version.
fn stdio(home: &Path) -> StdioMcp {
    let mut c = cortex(home);
    // A long "now" TTL: only the memory version can make these entries stale.
    c.env("CORTEX_MCP_CACHE_NOW_TTL_MS", "600000");
    StdioMcp::start(c, "2025-11-25", "cache-test")
}

/// The server's cache (hits, misses), read with `cortex_metrics`.
fn cache(s: &mut StdioMcp) -> (u64, u64) {
    let m = s.ok("cortex_metrics", json!({}));
    (
        m["cache_hits"].as_u64().unwrap(),
        m["cache_misses"].as_u64().unwrap(),
    )
}

fn ids(search: &Value) -> Vec<u64> {
    let mut ids: Vec<u64> = search["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["fact"]["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn a_write_by_another_process_is_seen_by_the_next_cached_read() {
    let dir = home();
    let mut a = stdio(dir.path());
    let mut b = stdio(dir.path());

    let s1 = a.ok(
        "cortex_store",
        json!({"project": "cache", "content": "the cache is keyed by the memory version"}),
    );
    let id1 = s1["facts"][0]["id"].as_u64().unwrap();
    let q = json!({"query": "memory version cache", "project": "cache"});
    assert_eq!(ids(&a.ok("cortex_search", q.clone())), vec![id1]);
    assert_eq!(cache(&mut a), (0, 1));
    assert_eq!(ids(&a.ok("cortex_search", q.clone())), vec![id1]);
    assert_eq!(
        a.ok("cortex_recall", json!({"project": "cache"}))["count"],
        1
    );
    assert_eq!(
        a.ok("cortex_recall", json!({"project": "cache"}))["count"],
        1
    );
    assert_eq!(cache(&mut a), (2, 2), "repeats are hits");

    // The other process writes; its acknowledgement comes after the commit.
    let s2 = b.ok(
        "cortex_store",
        json!({"project": "cache", "content": "a second process bumps the memory version"}),
    );
    let id2 = s2["facts"][0]["id"].as_u64().unwrap();
    assert_eq!(ids(&a.ok("cortex_search", q.clone())), vec![id1, id2]);
    assert_eq!(
        a.ok("cortex_recall", json!({"project": "cache"}))["count"],
        2
    );
    assert_eq!(
        cache(&mut a),
        (2, 4),
        "both reads missed after the other write"
    );

    // Deprecation through the other process is seen too; then hits resume.
    b.ok("cortex_deprecate", json!({"fact_id": id1}));
    assert_eq!(ids(&a.ok("cortex_search", q.clone())), vec![id2]);
    assert_eq!(ids(&a.ok("cortex_search", q)), vec![id2]);
    assert_eq!(cache(&mut a), (3, 5));
}

#[test]
fn cache_can_be_turned_off() {
    let dir = home();
    let mut c = cortex(dir.path());
    c.env("CORTEX_MCP_CACHE_ENTRIES", "0");
    let mut s = StdioMcp::start(c, "2025-11-25", "cache-test");
    s.ok(
        "cortex_store",
        json!({"project": "p", "content": "uncached words"}),
    );
    s.ok("cortex_search", json!({"query": "words"}));
    s.ok("cortex_search", json!({"query": "words"}));
    assert_eq!(cache(&mut s), (0, 0));
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn http_post(port: u16, body: &Value) -> String {
    http_post_as(port, "tools/call", "cortex_search", body)
}

/// A 2026-07-28 `POST /mcp` with the given `Mcp-Method` and `Mcp-Name` headers; the whole
/// response text (status line, headers, body).
fn http_post_as(port: u16, method: &str, name: &str, body: &Value) -> String {
    let body = body.to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: {method}\r\nMcp-Name: {name}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

/// The status and body of a whole HTTP response text.
fn status_and_body(text: &str) -> (u16, &str) {
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text.split_once("\r\n\r\n").map_or("", |(_, b)| b))
}

/// `cortex mcp start --transport http` on a free port, once it listens.
fn http_server(home: &Path) -> common::NetworkServer {
    let port = common::free_port();
    let mut command = cortex(home);
    command
        .args(["mcp", "start", "--transport", "http", "--port"])
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    common::listening(command, port)
}

#[test]
fn http_metrics_and_health_share_one_registry() {
    let dir = home();
    let server = http_server(dir.path());
    let port = server.port;
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}});
    for _ in 0..2 {
        let reply = http_post(
            port,
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "cortex_search", "arguments": {"query": "anything"}, "_meta": meta}}),
        );
        assert!(reply.contains("\"isError\":false"), "{reply}");
    }
    let (status, health) = http_get(port, "/health");
    assert_eq!(status, 200, "{health}");
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"]["reachable"], true, "{health}");

    let (status, text) = http_get(port, "/metrics");
    assert_eq!(status, 200);
    assert!(
        text.contains("cortex_requests_total{transport=\"mcp\",method=\"cortex_search\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("cortex_requests_total{transport=\"http\",method=\"POST /mcp\"} 2"),
        "{text}"
    );
    assert!(text.contains("cortex_cache_hits_total 1"), "{text}");
    assert!(text.contains("cortex_cache_misses_total 1"), "{text}");
}

/// A cached search is sent as the very bytes of the reply that filled the cache (the cache keeps
/// the result's text), and a stateless error gets the HTTP status the protocol maps its code to.
#[test]
fn cached_replies_are_the_same_bytes_and_stateless_errors_get_their_status() {
    let dir = home();
    let stored = cortex(dir.path())
        .args([
            "store",
            "--project",
            "p",
            "--content",
            "the cache keeps reply text",
        ])
        .output()
        .unwrap();
    assert!(stored.status.success());
    let server = http_server(dir.path());
    let port = server.port;
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}});
    let search = json!({"jsonrpc": "2.0", "id": "s-1", "method": "tools/call", "params": {
        "name": "cortex_search", "arguments": {"query": "reply text"}, "_meta": meta}});
    let first = http_post(port, &search);
    let second = http_post(port, &search);
    let (s1, b1) = status_and_body(&first);
    let (s2, b2) = status_and_body(&second);
    assert_eq!((s1, s2), (200, 200), "{first}");
    assert_eq!(b1, b2, "the cached reply differs from the computed one");
    let reply: Value = serde_json::from_str(b1).unwrap();
    assert_eq!(reply["id"], "s-1");
    assert_eq!(reply["result"]["resultType"], "complete", "{reply}");
    assert_eq!(
        reply["result"]["structuredContent"]["hits"][0]["fact"]["content"],
        "the cache keeps reply text"
    );
    let (_, metrics) = http_get(port, "/metrics");
    assert!(metrics.contains("cortex_cache_hits_total 1"), "{metrics}");

    // A stateless version header on a body without `_meta`: -32020 from the server, 400.
    let bare = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let text = http_post_as(port, "tools/list", "x", &bare);
    let (status, body) = status_and_body(&text);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("-32020"), "{body}");
    // An unknown method: -32601, 404.
    let unknown =
        json!({"jsonrpc": "2.0", "id": 3, "method": "nope/nope", "params": {"_meta": meta}});
    let text = http_post_as(port, "nope/nope", "x", &unknown);
    let (status, body) = status_and_body(&text);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("-32601"), "{body}");
}
