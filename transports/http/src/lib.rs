//! MCP over HTTP for CORTEX. [`HttpTransport`] serves, on one port:
//!
//! - **Streamable HTTP** at `/mcp`: `POST` carries one JSON-RPC message (or a batch); requests are
//!   answered with `application/json` or, when the client only accepts `text/event-stream`, with
//!   an SSE stream scoped to the request (notifications the handler sends meanwhile, then the
//!   reply). Revisions up to 2025-11-25 get sessions (`Mcp-Session-Id` minted on `initialize`,
//!   `GET` for the session's server stream, `DELETE` to end it); the stateless 2026-07-28
//!   revision gets no sessions, `405` on `GET`/`DELETE`, and its header checks (`Mcp-Method`,
//!   `Mcp-Name`, `MCP-Protocol-Version` against the body).
//! - the **legacy HTTP+SSE** transport of 2024-11-05: `GET /sse` opens the stream and announces
//!   `endpoint`; `POST /messages?sessionId=…` delivers messages whose replies go on that stream.
//! - `GET /health` (JSON) and `GET /metrics` (Prometheus text from [`cortex_mcp::metrics`]).
//!
//! Every request is checked against the allowed origins (`403` otherwise) and the body limit
//! (`413`); bad JSON gets a JSON-RPC parse error. The transport moves messages only; what they
//! mean is the [`MessageHandler`]'s business.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Request checks return the finished HTTP error response; it is built only on the error path.
#![allow(clippy::result_large_err)]

mod config;
mod legacy;
mod streamable;

pub use config::{
    ALLOWED_ORIGINS_ENV, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_SESSIONS, DEFAULT_PORT,
    DEFAULT_SESSION_IDLE, HttpConfig, parse_origins,
};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cortex_core::error::{Error, ErrorKind, Result};
use cortex_core::ledger::anchor::BoxFuture;
use cortex_mcp::protocol::{
    self,
    codes::{INVALID_REQUEST, PARSE_ERROR},
};
use cortex_mcp::transport::{MessageHandler, Outbound, Transport};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// Streamable HTTP, legacy HTTP+SSE, `/health` and `/metrics`, served by axum.
#[derive(Debug)]
pub struct HttpTransport {
    config: HttpConfig,
    listener: Option<tokio::net::TcpListener>,
}

impl HttpTransport {
    /// A transport that binds `config.address()` when served.
    pub fn new(config: HttpConfig) -> Self {
        HttpTransport {
            config,
            listener: None,
        }
    }

    /// Binds now, so the caller learns the address (port 0 picks a free one) before serving.
    pub async fn bind(config: HttpConfig) -> Result<Self> {
        let listener = bind(&config).await?;
        Ok(HttpTransport {
            config,
            listener: Some(listener),
        })
    }

    /// The bound address, once [`HttpTransport::bind`] has run.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The axum router, for mounting the MCP endpoints into a larger server. SSE streams it opens
    /// end when `shutdown` turns true.
    pub fn router(
        config: HttpConfig,
        handler: Arc<dyn MessageHandler>,
        shutdown: watch::Receiver<bool>,
    ) -> Router {
        Self::routes(config, handler, shutdown, true)
    }

    /// The MCP endpoints alone (`/mcp`, `/sse`, `/messages`), for a server that has its own
    /// `/health` and `/metrics` (`cortex serve`, which puts its API-key layer around them: the
    /// [`cortex_core::access::Principal`] that layer leaves in the request's extensions is
    /// handed to the handler with each message).
    pub fn mcp_router(
        config: HttpConfig,
        handler: Arc<dyn MessageHandler>,
        shutdown: watch::Receiver<bool>,
    ) -> Router {
        Self::routes(config, handler, shutdown, false)
    }

    fn routes(
        config: HttpConfig,
        handler: Arc<dyn MessageHandler>,
        shutdown: watch::Receiver<bool>,
        with_ops: bool,
    ) -> Router {
        let shared = Arc::new(Shared {
            handler,
            config,
            sessions: Mutex::default(),
            legacy: Mutex::default(),
            shutdown,
        });
        let mut router = Router::new()
            .route(
                "/mcp",
                get(streamable::get)
                    .post(streamable::post)
                    .delete(streamable::delete),
            )
            .route("/sse", get(legacy::open))
            .route("/messages", axum::routing::post(legacy::post));
        if with_ops {
            router = router
                .route("/health", get(health))
                .route("/metrics", get(metrics));
        }
        router
            .route_layer(middleware::from_fn_with_state(shared.clone(), observe))
            .layer(middleware::from_fn_with_state(shared.clone(), check_origin))
            .with_state(shared)
    }
}

/// Binds `config.address()` with a clear error.
pub async fn bind(config: &HttpConfig) -> Result<tokio::net::TcpListener> {
    let address = config.address();
    tokio::net::TcpListener::bind(&address).await.map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("cannot listen on {address}"),
        )
        .with_context("address", &address)
        .with_source(e)
    })
}

/// Serves `router` on `listener` until `shutdown` resolves, then tells open streams to end
/// (through `stop`) and waits for connections to drain.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: BoxFuture<'static, ()>,
    stop: watch::Sender<bool>,
) -> Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Unavailable, "HTTP server failed").with_source(e))
}

impl Transport for HttpTransport {
    fn name(&self) -> &'static str {
        if self.config.legacy_sse_primary {
            "sse"
        } else {
            "http"
        }
    }

    fn serve(
        self: Box<Self>,
        handler: Arc<dyn MessageHandler>,
        shutdown: BoxFuture<'static, ()>,
    ) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            let listener = match self.listener {
                Some(l) => l,
                None => bind(&self.config).await?,
            };
            let (stop, stopped) = watch::channel(false);
            let router = HttpTransport::router(self.config, handler, stopped);
            serve_router(listener, router, shutdown, stop).await
        })
    }
}

/// State shared by every route.
pub(crate) struct Shared {
    pub(crate) handler: Arc<dyn MessageHandler>,
    pub(crate) config: HttpConfig,
    /// Streamable HTTP sessions (revisions up to 2025-11-25).
    pub(crate) sessions: Mutex<HashMap<String, Session>>,
    /// Legacy HTTP+SSE sessions: the way to each open `/sse` stream.
    pub(crate) legacy: Mutex<HashMap<String, mpsc::UnboundedSender<String>>>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One Streamable HTTP session.
#[derive(Debug)]
pub(crate) struct Session {
    /// The session's `GET` stream, while one is open.
    pub(crate) stream: Option<mpsc::UnboundedSender<String>>,
    /// The API key that opened it (only that key may use it).
    pub(crate) key_id: Option<String>,
    /// When it was last used; sessions idle past `HttpConfig::session_idle` end.
    pub(crate) last_seen: Instant,
}

/// Sends into a channel that feeds an SSE stream.
pub(crate) struct ChannelOutbound(pub(crate) mpsc::UnboundedSender<String>);

impl Outbound for ChannelOutbound {
    fn send(&self, message: String) -> Result<()> {
        self.0
            .send(message)
            .map_err(|_| Error::new(ErrorKind::Unavailable, "the peer's stream is closed"))
    }
}

/// A fresh session id: 128 random bits in hex (visible ASCII, as the spec requires).
pub fn new_session_id() -> String {
    let mut bytes = [0u8; 16];
    // An OS without randomness cannot serve sessions safely; fall back to time plus a counter
    // would be guessable, so fail loudly instead.
    getrandom::fill(&mut bytes).expect("operating system random source");
    hex::encode(bytes)
}

/// An HTTP response whose body is a JSON-RPC error about the request as a whole (no id).
pub fn error_response(status: StatusCode, code: i64, message: &str) -> Response {
    json_response(status, protocol::frame_error(code, message))
}

pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads a body up to the configured limit: `413` with a JSON-RPC error beyond it.
pub(crate) async fn read_body(
    shared: &Shared,
    headers: &HeaderMap,
    body: Body,
) -> std::result::Result<axum::body::Bytes, Response> {
    let limit = shared.config.max_body_bytes;
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            INVALID_REQUEST,
            &format!("Request body exceeds the limit of {limit} bytes"),
        )
    };
    if let Some(length) = header_str(headers, "content-length").and_then(|v| v.parse::<u64>().ok())
        && length > limit as u64
    {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        while let Some(err) = source {
            if err.to_string().contains("length limit exceeded") {
                return too_large();
            }
            source = err.source();
        }
        error_response(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            &format!("Could not read the request body: {e}"),
        )
    })
}

/// Parses a body as JSON: `400` with a JSON-RPC parse error otherwise.
pub(crate) fn parse_json(bytes: &[u8]) -> std::result::Result<serde_json::Value, Response> {
    serde_json::from_slice(bytes).map_err(|e| {
        error_response(
            StatusCode::BAD_REQUEST,
            PARSE_ERROR,
            &format!("Parse error: {e}"),
        )
    })
}

/// The protocol's shape rule ([`protocol::check_shape`]) as an HTTP `400`.
pub(crate) fn check_shape(message: &serde_json::Value) -> std::result::Result<(), Response> {
    protocol::check_shape(message).map_err(|e| {
        json_response(
            StatusCode::BAD_REQUEST,
            e.to_response(serde_json::Value::Null).to_string(),
        )
    })
}

async fn check_origin(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let origin = header_str(request.headers(), "origin");
    if !shared.config.origin_allowed(origin) {
        let message = format!(
            "Forbidden: Origin '{}' is not allowed (set {ALLOWED_ORIGINS_ENV})",
            origin.unwrap_or_default()
        );
        shared.config.metrics.record_error("http", "origin");
        return error_response(StatusCode::FORBIDDEN, INVALID_REQUEST, &message);
    }
    next.run(request).await
}

async fn observe(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let label = format!("{} {route}", request.method());
    let metrics = shared.config.metrics.clone();
    let _in_flight = metrics.connection("http");
    let started = Instant::now();
    let response = next.run(request).await;
    let ok = !(response.status().is_client_error() || response.status().is_server_error());
    metrics.record_request("http", &label, started.elapsed(), ok);
    response
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let sessions = shared.sessions.lock().map(|s| s.len()).unwrap_or(0);
    let legacy = shared.legacy.lock().map(|s| s.len()).unwrap_or(0);
    let (transport, endpoint) = if shared.config.legacy_sse_primary {
        ("sse", "/sse")
    } else {
        ("http", "/mcp")
    };
    // The handler's own check (the MCP server reads the database's memory version): a
    // blocking read, so off the executor.
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
        "transport": transport,
        "endpoint": endpoint,
        "endpoints": { "streamable_http": "/mcp", "legacy_sse": "/sse", "legacy_messages": "/messages" },
        "sessions": sessions,
        "legacy_sessions": legacy,
        "protocol_versions": protocol::supported_versions(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    json_response(code, body.to_string())
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let mut response = shared.config.metrics.render_prometheus().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Turns a stream of SSE frames into a response with the headers SSE needs.
pub(crate) fn sse_response(
    stream: impl futures_util::Stream<Item = String> + Send + 'static,
) -> Response {
    use futures_util::StreamExt;
    let body = Body::from_stream(stream.map(Ok::<_, std::convert::Infallible>));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// One SSE event carrying `data` (split over `data:` lines if it has newlines).
pub(crate) fn sse_event(event: &str, data: &str) -> String {
    let mut out = format!("event: {event}\n");
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// Ends a stream when the server shuts down, with periodic keep-alive comments meanwhile.
pub(crate) fn until_shutdown(
    shared: &Shared,
    stream: impl futures_util::Stream<Item = String> + Send + 'static,
) -> impl futures_util::Stream<Item = String> + Send + 'static {
    use futures_util::StreamExt;
    let mut stop = shared.shutdown.clone();
    let keep_alive = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(std::time::Duration::from_secs(15)).await;
        Some((":\n\n".to_owned(), ()))
    });
    futures_util::stream::select(
        stream
            .map(Some)
            .chain(futures_util::stream::once(async { None })),
        keep_alive.map(Some),
    )
    .take_while(|item| std::future::ready(item.is_some()))
    .filter_map(std::future::ready)
    .take_until(async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    })
}
