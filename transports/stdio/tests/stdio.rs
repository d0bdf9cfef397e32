//! The stdio transport over in-memory pipes: one reply line per request, none for
//! notifications, parse errors for oversized or non-UTF-8 lines, clean stop at end of input.

use cortex_core::ledger::anchor::BoxFuture;
use cortex_mcp::transport::{Incoming, Outbound};
use cortex_mcp::{MessageHandler, Transport};
use cortex_stdio::StdioTransport;
use serde_json::Value;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Echoes requests (messages with an id) back as results; ignores notifications.
struct Echo;

impl MessageHandler for Echo {
    fn handle<'a>(
        &'a self,
        incoming: Incoming,
        _out: Arc<dyn Outbound>,
    ) -> BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            let v: Value = serde_json::from_str(&incoming.message).ok()?;
            let id = v.get("id")?.clone();
            Some(
                serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {"echo": v["method"]}})
                    .to_string(),
            )
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_each_line_and_stops_at_eof() {
    let (mut client_w, server_r) = tokio::io::duplex(1 << 16);
    let (server_w, mut client_r) = tokio::io::duplex(1 << 16);
    let t = Box::new(StdioTransport::with_io(server_r, server_w).max_message_bytes(64));
    let serve = tokio::spawn(t.serve(Arc::new(Echo), Box::pin(std::future::pending())));
    let mut input = String::new();
    input.push_str("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}\n");
    input.push_str("{\"jsonrpc\":\"2.0\",\"method\":\"note\"}\r\n");
    input.push('\n');
    input.push_str(&format!("{{\"x\":\"{}\"}}\n", "y".repeat(100)));
    client_w.write_all(input.as_bytes()).await.unwrap();
    client_w.write_all(b"\xff\xfe\n").await.unwrap();
    client_w
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"b\"}")
        .await
        .unwrap();
    drop(client_w); // EOF without a final newline
    serve.await.unwrap().unwrap();
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut client_r, &mut out)
        .await
        .unwrap();
    let replies: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(replies.len(), 4, "{out}");
    let ids: Vec<&Value> = replies.iter().map(|r| &r["id"]).collect();
    assert!(ids.contains(&&Value::from(1)) && ids.contains(&&Value::from(2)));
    let errors: Vec<&str> = replies
        .iter()
        .filter_map(|r| r["error"]["message"].as_str())
        .collect();
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().any(|e| e.contains("longer than 64 bytes")));
    assert!(errors.iter().any(|e| e.contains("UTF-8")));
}
