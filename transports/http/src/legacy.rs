//! The HTTP+SSE transport of protocol revision 2024-11-05: `GET /sse` opens the stream and sends
//! an `endpoint` event naming the POST URL; `POST /messages?sessionId=…` answers `202 Accepted`
//! and the reply goes out on the stream as a `message` event.

use crate::{
    ChannelOutbound, Shared, check_shape, error_response, header_str, parse_json, read_body,
    sse_event, sse_response, until_shutdown,
};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cortex_mcp::protocol::codes::INVALID_REQUEST;
use cortex_mcp::transport::{Incoming, Outbound};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Removes the legacy session when its stream ends.
struct LegacySlot {
    shared: Arc<Shared>,
    session: String,
}

impl Drop for LegacySlot {
    fn drop(&mut self) {
        if let Ok(mut legacy) = self.shared.legacy.lock() {
            legacy.remove(&self.session);
        }
    }
}

/// `GET /sse`.
pub(crate) async fn open(State(shared): State<Arc<Shared>>) -> Response {
    let session = crate::new_session_id();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    if let Ok(mut legacy) = shared.legacy.lock() {
        legacy.insert(session.clone(), tx);
    }
    let endpoint = sse_event("endpoint", &format!("/messages?sessionId={session}"));
    let slot = LegacySlot {
        shared: shared.clone(),
        session,
    };
    let connection = shared.config.metrics.owned_connection("sse");
    let messages = futures_util::stream::poll_fn(move |cx| {
        let _keep = (&slot, &connection);
        rx.poll_recv(cx)
    })
    .map(|m| sse_event("message", &m));
    let stream = futures_util::stream::once(async move { endpoint }).chain(messages);
    sse_response(until_shutdown(&shared, stream.boxed()))
}

/// `POST /messages?sessionId=…`.
pub(crate) async fn post(
    State(shared): State<Arc<Shared>>,
    principal: Option<axum::Extension<cortex_core::access::Principal>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(session) = query.get("sessionId").or_else(|| query.get("session_id")) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "Bad Request: the sessionId query parameter is required (GET /sse first)",
        );
    };
    let sender = shared
        .legacy
        .lock()
        .ok()
        .and_then(|l| l.get(session).cloned());
    let Some(sender) = sender else {
        return error_response(
            StatusCode::NOT_FOUND,
            INVALID_REQUEST,
            "Session not found: open a new stream with GET /sse",
        );
    };
    let bytes = match read_body(&shared, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let message = match parse_json(&bytes) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = check_shape(&message) {
        return r;
    }
    let incoming = Incoming {
        message: String::from_utf8_lossy(&bytes).into_owned(),
        session_id: Some(session.clone()),
        protocol_version: header_str(&headers, "mcp-protocol-version").map(str::to_owned),
        origin: header_str(&headers, "origin").map(str::to_owned),
        transport: "sse",
        principal: principal.map(|p| p.0),
        ..Incoming::default()
    };
    let outbound: Arc<dyn Outbound> = Arc::new(ChannelOutbound(sender.clone()));
    let handler = shared.handler.clone();
    // Replies travel on the stream; keep message order per session by answering in a task only
    // after the handler is done, so the POST itself returns at once.
    tokio::spawn(async move {
        if let Some(reply) = handler.handle(incoming, outbound).await {
            let _ = sender.send(reply);
        }
    });
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
