//! MCP over WebSocket for CORTEX. [`WebSocketTransport`] accepts upgrades at `/` and `/mcp`
//! (and serves `/health` and `/metrics` beside them), negotiates the `mcp` subprotocol and
//! refuses clients that do not offer it, and carries one JSON-RPC message per text frame in each
//! direction. Binary frames and messages over the size limit get a JSON-RPC error and close the
//! connection (close codes 1003 and 1009). Origins are checked as for HTTP (`403`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cortex_core::error::{Error, ErrorKind, Result};
use cortex_core::ledger::anchor::BoxFuture;
use cortex_http::{HttpConfig, error_response};
use cortex_mcp::protocol::codes::{INVALID_REQUEST, PARSE_ERROR};
use cortex_mcp::protocol::frame_error;
use cortex_mcp::transport::{Incoming, MessageHandler, Outbound, Transport};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// The WebSocket subprotocol MCP peers must offer.
pub const SUBPROTOCOL: &str = "mcp";
/// Close code for a binary frame (unsupported data).
pub const CLOSE_UNSUPPORTED_DATA: u16 = 1003;
/// Close code for a message over the size limit.
pub const CLOSE_TOO_BIG: u16 = 1009;

/// WebSocket transport, served by axum.
#[derive(Debug)]
pub struct WebSocketTransport {
    config: HttpConfig,
    listener: Option<tokio::net::TcpListener>,
}

impl WebSocketTransport {
    /// A transport that binds `config.address()` when served.
    pub fn new(config: HttpConfig) -> Self {
        WebSocketTransport {
            config,
            listener: None,
        }
    }

    /// Binds now, so the caller learns the address before serving.
    pub async fn bind(config: HttpConfig) -> Result<Self> {
        let listener = cortex_http::bind(&config).await?;
        Ok(WebSocketTransport {
            config,
            listener: Some(listener),
        })
    }

    /// The bound address, once [`WebSocketTransport::bind`] has run.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The upgrade endpoint alone at `/ws`, for a server with its own `/health` and `/metrics`
    /// (`cortex serve`, behind its API-key layer: the [`cortex_core::access::Principal`] that
    /// layer leaves in the upgrade request's extensions is handed on with every message of the
    /// connection).
    pub fn upgrade_router(
        config: HttpConfig,
        handler: Arc<dyn MessageHandler>,
        shutdown: watch::Receiver<bool>,
    ) -> Router {
        let shared = Shared::new(config, handler, shutdown);
        Router::new().route("/ws", get(upgrade)).with_state(shared)
    }

    /// The axum router, for mounting into a larger server.
    pub fn router(
        config: HttpConfig,
        handler: Arc<dyn MessageHandler>,
        shutdown: watch::Receiver<bool>,
    ) -> Router {
        let shared = Shared::new(config, handler, shutdown);
        Router::new()
            .route("/", get(upgrade))
            .route("/mcp", get(upgrade))
            .route("/ws", get(upgrade))
            .route("/health", get(health))
            .route("/metrics", get(metrics))
            .with_state(shared)
    }
}

impl Transport for WebSocketTransport {
    fn name(&self) -> &'static str {
        "ws"
    }

    fn serve(
        self: Box<Self>,
        handler: Arc<dyn MessageHandler>,
        shutdown: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            let listener = match self.listener {
                Some(l) => l,
                None => cortex_http::bind(&self.config).await?,
            };
            let (stop, stopped) = watch::channel(false);
            let router = WebSocketTransport::router(self.config, handler, stopped);
            cortex_http::serve_router(listener, router, shutdown, stop).await
        })
    }
}

struct Shared {
    config: HttpConfig,
    handler: Arc<dyn MessageHandler>,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    fn new(
        config: HttpConfig,
        handler: Arc<dyn MessageHandler>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            config,
            handler,
            shutdown,
        })
    }
}

fn offers_mcp(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL)
}

async fn upgrade(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let metrics = shared.config.metrics.clone();
    let headers = request.headers().clone();
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if !shared.config.origin_allowed(origin.as_deref()) {
        metrics.record_error("ws", "origin");
        return error_response(
            StatusCode::FORBIDDEN,
            INVALID_REQUEST,
            &format!(
                "Forbidden: Origin '{}' is not allowed (set {})",
                origin.unwrap_or_default(),
                cortex_http::ALLOWED_ORIGINS_ENV
            ),
        );
    }
    if !offers_mcp(&headers) {
        metrics.record_error("ws", "subprotocol");
        return error_response(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "Bad Request: the WebSocket client must offer the 'mcp' subprotocol (Sec-WebSocket-Protocol: mcp)",
        );
    }
    let principal = request
        .extensions()
        .get::<cortex_core::access::Principal>()
        .cloned();
    let (mut parts, _body) = request.into_parts();
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws,
        Err(rejection) => {
            metrics.record_error("ws", "upgrade");
            let message = format!("Bad Request: not a WebSocket upgrade ({rejection})");
            return error_response(StatusCode::BAD_REQUEST, INVALID_REQUEST, &message);
        }
    };
    let limit = shared.config.max_body_bytes;
    // tungstenite refuses far larger messages itself; up to twice the limit we read the message
    // and answer with a clear error before closing.
    ws.protocols([SUBPROTOCOL])
        .max_message_size(limit.saturating_mul(2).max(1024))
        .max_frame_size(limit.saturating_mul(2).max(1024))
        .on_upgrade(move |socket| connection(shared, socket, origin, principal))
}

struct SocketOutbound(mpsc::UnboundedSender<Message>);

impl Outbound for SocketOutbound {
    fn send(&self, message: String) -> Result<()> {
        self.0
            .send(Message::Text(message.into()))
            .map_err(|_| Error::new(ErrorKind::Unavailable, "the WebSocket is closed"))
    }
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

async fn connection(
    shared: Arc<Shared>,
    socket: WebSocket,
    origin: Option<String>,
    principal: Option<cortex_core::access::Principal>,
) {
    let metrics = shared.config.metrics.clone();
    let _open = metrics.connection("ws");
    let session = cortex_http::new_session_id();
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let outbound: Arc<dyn Outbound> = Arc::new(SocketOutbound(tx.clone()));
    let limit = shared.config.max_body_bytes;
    let mut stop = shared.shutdown.clone();
    loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            _ = stop.wait_for(|s| *s) => {
                let _ = tx.send(close(1001, "server shutting down"));
                break;
            }
        };
        let Some(Ok(frame)) = frame else {
            if let Some(Err(_)) = frame {
                metrics.record_error("ws", "frame");
                let _ = tx.send(close(CLOSE_TOO_BIG, "message too big or malformed"));
            }
            break;
        };
        match frame {
            Message::Text(text) => {
                if text.len() > limit {
                    metrics.record_error("ws", "oversized");
                    let error = frame_error(
                        INVALID_REQUEST,
                        format!("Message exceeds the limit of {limit} bytes"),
                    );
                    let _ = tx.send(Message::Text(error.into()));
                    let _ = tx.send(close(CLOSE_TOO_BIG, "message too big"));
                    break;
                }
                let text = text.as_str().to_owned();
                if let Err(error) = serde_json::from_str::<serde_json::Value>(&text) {
                    metrics.record_error("ws", "parse");
                    let error = frame_error(PARSE_ERROR, format!("Parse error: {error}"));
                    let _ = tx.send(Message::Text(error.into()));
                    continue;
                }
                let incoming = Incoming {
                    message: text,
                    session_id: Some(session.clone()),
                    origin: origin.clone(),
                    transport: "ws",
                    principal: principal.clone(),
                    ..Incoming::default()
                };
                let handler = shared.handler.clone();
                let out = outbound.clone();
                let tx = tx.clone();
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let started = std::time::Instant::now();
                    let reply = handler.handle(incoming, out).await;
                    let ok = !reply.as_deref().is_some_and(|r| r.contains("\"error\""));
                    metrics.record_request("ws", "message", started.elapsed(), ok);
                    if let Some(reply) = reply {
                        let _ = tx.send(Message::Text(reply.into()));
                    }
                });
            }
            Message::Binary(_) => {
                metrics.record_error("ws", "binary");
                let error = frame_error(
                    INVALID_REQUEST,
                    "Binary frames are not supported: send one JSON-RPC message per text frame",
                );
                let _ = tx.send(Message::Text(error.into()));
                let _ = tx.send(close(CLOSE_UNSUPPORTED_DATA, "binary frames not supported"));
                break;
            }
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
    // A close frame ends the writer even if the handler still holds an outbound handle.
    let _ = tx.send(close(1000, "bye"));
    drop(outbound);
    drop(tx);
    let _ = writer.await;
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let handler = shared.handler.clone();
    let check = tokio::task::spawn_blocking(move || handler.health())
        .await
        .unwrap_or_else(|_| Err("the health check panicked".to_owned()));
    let (status, code, database) = match &check {
        Ok(()) => ("ok", StatusCode::OK, serde_json::json!({"reachable": true})),
        Err(e) => (
            "unavailable",
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"reachable": false, "error": e}),
        ),
    };
    let body = serde_json::json!({
        "status": status,
        "database": database,
        "transport": "ws",
        "endpoint": "/mcp",
        "subprotocol": SUBPROTOCOL,
        "active_connections": shared.config.metrics.snapshot().active_connections.get("ws").copied().unwrap_or(0),
        "version": env!("CARGO_PKG_VERSION"),
    });
    let mut response = (code, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let mut response = shared.config.metrics.render_prometheus().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
