//! WebSocket transport over loopback with tokio-tungstenite and a small echo handler.

use cortex_core::ledger::anchor::BoxFuture;
use cortex_http::HttpConfig;
use cortex_mcp::transport::{Incoming, MessageHandler, Outbound, Transport};
use cortex_websocket::WebSocketTransport;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Echoes requests; for `notify` first sends a notification through the outbound handle.
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
            if message["method"] == "notify" {
                let _ = outbound
                    .send(json!({"jsonrpc": "2.0", "method": "notifications/message"}).to_string());
            }
            Some(
                json!({"jsonrpc": "2.0", "id": id, "result": {"method": message["method"], "session": incoming.session_id}})
                    .to_string(),
            )
        })
    }
}

async fn start(max: usize) -> (String, tokio::sync::oneshot::Sender<()>) {
    let config = HttpConfig {
        port: 0,
        max_body_bytes: max,
        ..HttpConfig::default()
    };
    let transport = WebSocketTransport::bind(config).await.expect("bind");
    let addr = transport.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown: BoxFuture<'static, ()> = Box::pin(async move {
        let _ = stopped.await;
    });
    tokio::spawn(Box::new(transport).serve(Arc::new(Echo), shutdown));
    (format!("ws://{addr}/mcp"), stop)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, protocol: Option<&str>) -> Result<Socket, String> {
    let mut request = url.into_client_request().expect("request");
    if let Some(p) = protocol {
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_str(p).unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, response)) => {
            assert_eq!(
                response.headers()["sec-websocket-protocol"],
                "mcp",
                "server must select the mcp subprotocol"
            );
            Ok(socket)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(format!(
            "{} {}",
            response.status(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
        )),
        Err(e) => Err(e.to_string()),
    }
}

async fn next_text(socket: &mut Socket) -> String {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("frame in time")
            .expect("socket open")
            .expect("frame");
        match frame {
            Message::Text(t) => return t.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn next_close(socket: &mut Socket) -> u16 {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("frame in time");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) | None => return 1005,
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket error: {e}"),
        }
    }
}

#[tokio::test]
async fn negotiates_mcp_and_carries_one_message_per_text_frame() {
    let (url, _stop) = start(64 * 1024).await;
    let mut socket = connect(&url, Some("mcp")).await.expect("connect");
    socket
        .send(Message::text(
            json!({"jsonrpc": "2.0", "id": 1, "method": "notify"}).to_string(),
        ))
        .await
        .unwrap();
    let first: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
    assert_eq!(first["method"], "notifications/message");
    let second: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
    assert_eq!(second["id"], 1);
    assert_eq!(second["result"]["session"].as_str().unwrap().len(), 32);

    // Several requests in flight: each reply is one whole JSON-RPC message in its own frame.
    for id in 2..6 {
        socket
            .send(Message::text(
                json!({"jsonrpc": "2.0", "id": id, "method": "ping"}).to_string(),
            ))
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    for _ in 2..6 {
        let reply: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
        ids.push(reply["id"].as_u64().unwrap());
    }
    ids.sort();
    assert_eq!(ids, vec![2, 3, 4, 5]);

    socket.send(Message::text("{not json")).await.unwrap();
    let error: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
    assert_eq!(error["error"]["code"], -32700);
}

#[tokio::test]
async fn accepts_mcp_among_several_offered_subprotocols() {
    let (url, _stop) = start(64 * 1024).await;
    connect(&url, Some("graphql-ws, mcp"))
        .await
        .expect("mcp is selected");
}

#[tokio::test]
async fn rejects_clients_that_do_not_offer_mcp() {
    let (url, _stop) = start(64 * 1024).await;
    let error = connect(&url, None).await.expect_err("no subprotocol");
    assert!(error.starts_with("400"), "{error}");
    assert!(error.contains("'mcp' subprotocol"), "{error}");
    let error = connect(&url, Some("graphql-ws"))
        .await
        .expect_err("wrong subprotocol");
    assert!(error.starts_with("400"), "{error}");
}

#[tokio::test]
async fn rejects_disallowed_origins() {
    let (url, _stop) = start(64 * 1024).await;
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_static("mcp"));
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_static("http://evil.example"));
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected 403, got {other:?}"),
    }
}

#[tokio::test]
async fn binary_frames_are_rejected_with_an_error() {
    let (url, _stop) = start(64 * 1024).await;
    let mut socket = connect(&url, Some("mcp")).await.unwrap();
    socket
        .send(Message::binary(b"{\"jsonrpc\":\"2.0\"}".to_vec()))
        .await
        .unwrap();
    let error: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Binary frames")
    );
    assert_eq!(next_close(&mut socket).await, 1003);
}

#[tokio::test]
async fn oversized_messages_are_rejected() {
    let (url, _stop) = start(1024).await;
    let mut socket = connect(&url, Some("mcp")).await.unwrap();
    let big =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x".repeat(1500)}});
    socket.send(Message::text(big.to_string())).await.unwrap();
    let error: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1024 bytes")
    );
    assert_eq!(next_close(&mut socket).await, 1009);
}
