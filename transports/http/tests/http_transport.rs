//! Streamable HTTP and legacy HTTP+SSE over loopback with a real HTTP client and a small echo
//! handler (the MCP server is tested end to end in the workspace's `tests/mcp_network.rs`).

use cortex_core::ledger::anchor::BoxFuture;
use cortex_http::{HttpConfig, HttpTransport};
use cortex_mcp::transport::{Incoming, MessageHandler, Outbound, Transport};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Answers `initialize`, echoes anything else, and for `notify` first sends a notification.
struct Echo;

impl MessageHandler for Echo {
    fn handle<'a>(
        &'a self,
        incoming: Incoming,
        outbound: Arc<dyn Outbound>,
    ) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            let message: Value = serde_json::from_str(&incoming.message).ok()?;
            let id = message.get("id")?.clone();
            let method = message["method"].as_str().unwrap_or_default();
            if method == "notify" {
                let note = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "working"}});
                let _ = outbound.send(note.to_string());
            }
            let result = match method {
                "initialize" => {
                    json!({"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "echo", "version": "0"}})
                }
                "missing" => {
                    return Some(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}}).to_string());
                }
                _ => json!({
                    "method": method,
                    "session": incoming.session_id,
                    "version": incoming.protocol_version,
                    "mcp_method": incoming.mcp_method,
                }),
            };
            Some(json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string())
        })
    }
}

struct Server {
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(configure: impl FnOnce(&mut HttpConfig)) -> Server {
    let mut config = HttpConfig {
        port: 0,
        max_body_bytes: 64 * 1024,
        ..HttpConfig::default()
    };
    configure(&mut config);
    let transport = HttpTransport::bind(config).await.expect("bind");
    let base = format!("http://{}", transport.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown: BoxFuture<'static, ()> = Box::pin(async move {
        let _ = stopped.await;
    });
    tokio::spawn(Box::new(transport).serve(Arc::new(Echo), shutdown));
    Server { base, _stop: stop }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

const BOTH: &str = "application/json, text/event-stream";

fn rpc(id: u64, method: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": {}}).to_string()
}

async fn initialize(server: &Server) -> String {
    let response = client()
        .post(format!("{}/mcp", server.base))
        .header("accept", BOTH)
        .header("content-type", "application/json")
        .body(rpc(1, "initialize"))
        .send()
        .await
        .expect("initialize");
    assert_eq!(response.status(), 200);
    response
        .headers()
        .get("mcp-session-id")
        .expect("session id on initialize")
        .to_str()
        .expect("ascii")
        .to_owned()
}

async fn read_until(response: reqwest::Response, needle: &str, count: usize) -> String {
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while text.matches(needle).count() < count {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {needle:?}; got {text:?}"));
        match chunk {
            Some(Ok(bytes)) => text.push_str(&String::from_utf8_lossy(&bytes)),
            _ => break,
        }
    }
    text
}

async fn body_json(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn json_reply_with_session() {
    let server = start(|_| {}).await;
    let session = initialize(&server).await;
    assert_eq!(session.len(), 32);
    let response = client()
        .post(format!("{}/mcp", server.base))
        .header("accept", BOTH)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .body(rpc(2, "ping"))
        .send()
        .await
        .expect("ping");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body = body_json(response).await;
    assert_eq!(body["id"], 2);
    assert_eq!(body["result"]["session"], session.as_str());
    assert_eq!(body["result"]["version"], "2025-11-25");
}

#[tokio::test]
async fn sse_reply_carries_notifications_then_the_reply() {
    let server = start(|_| {}).await;
    let session = initialize(&server).await;
    let response = client()
        .post(format!("{}/mcp", server.base))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .body(rpc(3, "notify"))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let text = read_until(response, "event: message", 2).await;
    let note = text.find("notifications/message").expect("notification");
    let reply = text.find("\"id\":3").expect("reply");
    assert!(note < reply, "notification must precede the reply: {text}");
}

#[tokio::test]
async fn sessions_are_required_checked_and_terminated() {
    let server = start(|_| {}).await;
    let url = format!("{}/mcp", server.base);
    let missing = client()
        .post(&url)
        .header("accept", BOTH)
        .body(rpc(1, "ping"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let unknown = client()
        .post(&url)
        .header("accept", BOTH)
        .header("mcp-session-id", "nope")
        .body(rpc(1, "ping"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    let session = initialize(&server).await;
    let note = client()
        .post(&url)
        .header("accept", BOTH)
        .header("mcp-session-id", &session)
        .body(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(note.status(), 202);
    assert!(note.text().await.unwrap().is_empty());

    // The session's GET stream receives what the handler sends outside a reply.
    let stream = client()
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let notify = client()
        .post(&url)
        .header("accept", BOTH)
        .header("mcp-session-id", &session)
        .body(rpc(5, "notify"))
        .send()
        .await
        .unwrap();
    assert_eq!(body_json(notify).await["id"], 5);
    let text = read_until(stream, "notifications/message", 1).await;
    assert!(text.contains("event: message"), "{text}");

    let deleted = client()
        .delete(&url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let after = client()
        .post(&url)
        .header("accept", BOTH)
        .header("mcp-session-id", &session)
        .body(rpc(6, "ping"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 404);
}

#[tokio::test]
async fn protocol_version_header_is_checked() {
    let server = start(|_| {}).await;
    let url = format!("{}/mcp", server.base);
    let bad = client()
        .post(&url)
        .header("accept", BOTH)
        .header("mcp-protocol-version", "1999-01-01")
        .body(rpc(1, "initialize"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body = body_json(bad).await;
    assert_eq!(body["error"]["code"], -32022);
    assert!(
        body["error"]["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-11-25"))
    );

    // 2026-07-28: stateless, headers mirrored from the body.
    let ok = client()
        .post(&url)
        .header("accept", BOTH)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/list")
        .body(rpc(2, "tools/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().get("mcp-session-id").is_none());
    let body = body_json(ok).await;
    assert_eq!(body["result"]["session"], Value::Null);
    assert_eq!(body["result"]["mcp_method"], "tools/list");

    let mismatch = client()
        .post(&url)
        .header("accept", BOTH)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/list")
        .body(rpc(3, "tools/call"))
        .send()
        .await
        .unwrap();
    assert_eq!(mismatch.status(), 400);
    assert_eq!(body_json(mismatch).await["error"]["code"], -32020);

    let name = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "cortex_search"}});
    let encoded = client()
        .post(&url)
        .header("accept", BOTH)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "=?base64?Y29ydGV4X3NlYXJjaA==?=")
        .body(name.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(encoded.status(), 200);

    let unknown = client()
        .post(&url)
        .header("accept", BOTH)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "missing")
        .body(rpc(5, "missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(body_json(unknown).await["error"]["code"], -32601);

    let get = client()
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
}

#[tokio::test]
async fn disallowed_origin_is_forbidden() {
    let server = start(|_| {}).await;
    let evil = client()
        .post(format!("{}/mcp", server.base))
        .header("accept", BOTH)
        .header("origin", "http://evil.example")
        .body(rpc(1, "initialize"))
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), 403);
    let body = body_json(evil).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Origin")
    );
    assert_eq!(body["id"], Value::Null);

    let local = client()
        .post(format!("{}/mcp", server.base))
        .header("accept", BOTH)
        .header("origin", "http://localhost:3000")
        .body(rpc(1, "initialize"))
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), 200);

    let configured = start(|c| c.allowed_origins = vec!["https://app.example".into()]).await;
    let sse = client()
        .get(format!("{}/sse", configured.base))
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 403);
}

#[tokio::test]
async fn oversized_body_gets_413_with_a_jsonrpc_error() {
    let server = start(|c| c.max_body_bytes = 1024).await;
    let big =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x".repeat(4096)}});
    let response = client()
        .post(format!("{}/mcp", server.base))
        .header("accept", BOTH)
        .body(big.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body = body_json(response).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1024 bytes")
    );

    // Chunked (no Content-Length) is cut off at the limit too.
    let chunks =
        futures_util::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b' '; 512])));
    let response = client()
        .post(format!("{}/mcp", server.base))
        .header("accept", BOTH)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn malformed_json_gets_a_parse_error() {
    let server = start(|_| {}).await;
    for url in [format!("{}/mcp", server.base)] {
        let response = client()
            .post(&url)
            .header("accept", BOTH)
            .body("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\":")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], -32700);
        assert_eq!(body["id"], Value::Null);
    }
    let not_an_object = client()
        .post(format!("{}/mcp", server.base))
        .header("accept", BOTH)
        .body("42")
        .send()
        .await
        .unwrap();
    assert_eq!(not_an_object.status(), 400);
    assert_eq!(body_json(not_an_object).await["error"]["code"], -32600);
}

#[tokio::test]
async fn legacy_sse_endpoint_event_and_round_trip() {
    let server = start(|_| {}).await;
    let stream = client()
        .get(format!("{}/sse", server.base))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut bytes = stream.bytes_stream();
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), bytes.next())
            .await
            .expect("endpoint event")
            .expect("stream open")
            .expect("chunk");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.starts_with("event: endpoint\n"), "{text}");
    let endpoint = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("data line")
        .to_owned();
    assert!(endpoint.starts_with("/messages?sessionId="), "{endpoint}");

    let posted = client()
        .post(format!("{}{endpoint}", server.base))
        .header("content-type", "application/json")
        .body(rpc(7, "initialize"))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);
    let posted = client()
        .post(format!("{}{endpoint}", server.base))
        .body(rpc(8, "notify"))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);

    let mut rest = String::new();
    while !rest.contains("\"id\":8") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), bytes.next())
            .await
            .expect("reply event")
            .expect("stream open")
            .expect("chunk");
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(rest.contains("event: message\ndata: {"), "{rest}");
    assert!(rest.contains("\"id\":7"), "{rest}");
    assert!(rest.contains("notifications/message"), "{rest}");

    let malformed = client()
        .post(format!("{}{endpoint}", server.base))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(body_json(malformed).await["error"]["code"], -32700);

    let unknown = client()
        .post(format!("{}/messages?sessionId=unknown", server.base))
        .body(rpc(9, "ping"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn health_and_metrics() {
    let server = start(|c| c.legacy_sse_primary = true).await;
    let health = client()
        .get(format!("{}/health", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let body = body_json(health).await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["transport"], "sse");
    assert_eq!(body["endpoint"], "/sse");

    initialize(&server).await;
    let _ = client()
        .post(format!("{}/mcp", server.base))
        .header("origin", "http://evil.example")
        .body(rpc(1, "ping"))
        .send()
        .await
        .unwrap();
    let metrics = client()
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("cortex_requests_total{transport=\"http\",method=\"POST /mcp\"} 1"),
        "{text}"
    );
    assert!(text.contains("cortex_errors_total{transport=\"http\",method=\"origin\"} 1"));
    assert!(text.contains("# TYPE cortex_request_duration_seconds histogram"));
    assert!(text.contains("cortex_request_duration_seconds_count"));
    // The /metrics request itself is in flight while rendering.
    assert!(
        text.contains("cortex_active_connections{transport=\"http\"} 1"),
        "{text}"
    );
}

/// A handler whose dependency (the database) is down.
struct Sick;

impl MessageHandler for Sick {
    fn handle<'a>(
        &'a self,
        _incoming: Incoming,
        _outbound: Arc<dyn Outbound>,
    ) -> BoxFuture<'a, Option<String>> {
        Box::pin(async { None })
    }
    fn health(&self) -> std::result::Result<(), String> {
        Err("database unreachable: disk I/O error".to_owned())
    }
}

#[tokio::test]
async fn health_reports_the_database_reachable_or_not() {
    let up = start(|_| {}).await;
    let body = body_json(
        client()
            .get(format!("{}/health", up.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["database"]["reachable"], true, "{body}");

    let config = HttpConfig {
        port: 0,
        ..HttpConfig::default()
    };
    let transport = HttpTransport::bind(config).await.expect("bind");
    let base = format!("http://{}", transport.local_addr().expect("addr"));
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown: BoxFuture<'static, ()> = Box::pin(async move {
        let _ = stopped.await;
    });
    tokio::spawn(Box::new(transport).serve(Arc::new(Sick), shutdown));
    let health = client().get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let body = body_json(health).await;
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["database"]["reachable"], false, "{body}");
    assert!(
        body["database"]["error"]
            .as_str()
            .unwrap()
            .contains("disk I/O"),
        "{body}"
    );
}
