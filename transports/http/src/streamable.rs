//! Streamable HTTP at `/mcp`: sessions for revisions up to 2025-11-25, stateless header checks
//! for 2026-07-28.

use crate::{
    Session, Shared, check_shape, error_response, header_str, json_response, new_session_id,
    parse_json, read_body, sse_event, sse_response, until_shutdown,
};
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cortex_core::access::Principal;
use cortex_core::error::{Error, ErrorKind, Result};
use cortex_mcp::protocol::{self, MirroredHeaders, RpcError, codes::INVALID_REQUEST};
use cortex_mcp::transport::{Incoming, Outbound};
use futures_util::StreamExt;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// The `MCP-Protocol-Version` header, checked against the versions the protocol speaks.
fn protocol_version(headers: &HeaderMap) -> std::result::Result<Option<String>, Response> {
    let Some(raw) = headers.get(VERSION_HEADER) else {
        return Ok(None);
    };
    let version = raw.to_str().unwrap_or_default();
    if protocol::is_supported(version) {
        return Ok(Some(version.to_owned()));
    }
    let body = RpcError::unsupported_version(version).to_response(Value::Null);
    Err(json_response(StatusCode::BAD_REQUEST, body.to_string()))
}

/// What the client accepts for a reply.
enum ReplyMode {
    Json,
    Sse,
}

fn reply_mode(headers: &HeaderMap) -> std::result::Result<ReplyMode, Response> {
    let accept = header_str(headers, "accept").unwrap_or("*/*");
    let json = accept.contains("application/json")
        || accept.contains("*/*")
        || accept.contains("application/*");
    let sse = accept.contains("text/event-stream");
    match (json, sse) {
        (true, _) => Ok(ReplyMode::Json),
        (false, true) => Ok(ReplyMode::Sse),
        (false, false) => Err(error_response(
            StatusCode::NOT_ACCEPTABLE,
            INVALID_REQUEST,
            "Not Acceptable: Accept must list application/json and text/event-stream",
        )),
    }
}

/// 2026-07-28: the headers must mirror the body (the protocol's rule, applied here where the
/// headers arrive); a mismatch is `400` with the JSON-RPC error for the request's id.
fn check_stateless_headers(
    headers: &HeaderMap,
    message: &Value,
) -> std::result::Result<(), Response> {
    let mirrored = MirroredHeaders {
        version: header_str(headers, VERSION_HEADER),
        method: header_str(headers, "mcp-method"),
        name: header_str(headers, "mcp-name"),
        required: true,
    };
    protocol::check_stateless_message(&mirrored, message).map_err(|e| {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        json_response(StatusCode::BAD_REQUEST, e.to_response(id).to_string())
    })
}

/// Delivers non-reply messages to a session's `GET` stream, looked up at send time.
struct SessionOutbound {
    shared: Arc<Shared>,
    session: String,
}

impl Outbound for SessionOutbound {
    fn send(&self, message: String) -> Result<()> {
        let sessions = self
            .shared
            .sessions
            .lock()
            .map_err(|_| Error::backend("session table poisoned"))?;
        match sessions.get(&self.session).and_then(|s| s.stream.as_ref()) {
            Some(tx) => tx
                .send(message)
                .map_err(|_| Error::new(ErrorKind::Unavailable, "the session stream is closed")),
            None => Err(Error::new(
                ErrorKind::Unavailable,
                "the session has no open GET stream",
            )),
        }
    }
}

/// Nowhere to send: stateless requests answered with JSON have no side channel.
struct NoOutbound;

impl Outbound for NoOutbound {
    fn send(&self, _message: String) -> Result<()> {
        Err(Error::new(
            ErrorKind::Unavailable,
            "no stream to this peer (stateless JSON reply)",
        ))
    }
}

/// Replies go out as an SSE stream scoped to one request: notifications first, then the reply.
enum Frame {
    Note(String),
    Final(Option<String>),
}

struct FrameOutbound(mpsc::UnboundedSender<Frame>);

impl Outbound for FrameOutbound {
    fn send(&self, message: String) -> Result<()> {
        self.0
            .send(Frame::Note(message))
            .map_err(|_| Error::new(ErrorKind::Unavailable, "the request stream is closed"))
    }
}

/// Aborts the handler task when the SSE stream is dropped: closing the stream cancels.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether session `id` is open for this caller: it exists, has not been idle longer than the
/// configured limit (an idle one is ended here), and was opened with the same API key (a
/// session is never shared between keys). A known session's idle clock restarts.
fn session_known(shared: &Shared, id: &str, key: Option<&Principal>) -> bool {
    let Ok(mut sessions) = shared.sessions.lock() else {
        return false;
    };
    let idle = shared.config.session_idle;
    match sessions.get_mut(id) {
        Some(s) if s.last_seen.elapsed() > idle => {
            sessions.remove(id);
            shared.handler.end_session(id);
            false
        }
        Some(s) if s.key_id.as_deref() != key.map(|p| p.key_id.as_str()) => false,
        Some(s) => {
            s.last_seen = Instant::now();
            true
        }
        None => false,
    }
}

/// Opens a session for `key`, first ending sessions idle past the limit; `None` if the cap on
/// open sessions is still reached.
fn open_session(shared: &Shared, key: Option<&Principal>) -> Option<String> {
    let mut sessions = shared.sessions.lock().ok()?;
    if sessions.len() >= shared.config.max_sessions {
        let idle = shared.config.session_idle;
        let expired: Vec<String> = sessions
            .iter()
            .filter(|(_, s)| s.last_seen.elapsed() > idle)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            sessions.remove(&id);
            shared.handler.end_session(&id);
        }
        if sessions.len() >= shared.config.max_sessions {
            return None;
        }
    }
    let id = new_session_id();
    sessions.insert(
        id.clone(),
        Session {
            stream: None,
            key_id: key.map(|p| p.key_id.clone()),
            last_seen: Instant::now(),
        },
    );
    Some(id)
}

/// `POST /mcp`.
pub(crate) async fn post(
    State(shared): State<Arc<Shared>>,
    principal: Option<Extension<Principal>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let version = match protocol_version(&headers) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mode = match reply_mode(&headers) {
        Ok(m) => m,
        Err(r) => return r,
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
    let principal = principal.map(|Extension(p)| p);
    let key = principal.as_ref();
    let stateless = version.as_deref().is_some_and(protocol::is_stateless);
    let is_initialize = message.get("method").and_then(Value::as_str) == Some("initialize");
    let mut minted = None;
    let session = if stateless {
        if let Err(r) = check_stateless_headers(&headers, &message) {
            return r;
        }
        None
    } else if is_initialize {
        let Some(id) = open_session(&shared, key) else {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                INVALID_REQUEST,
                &format!(
                    "Service Unavailable: {} MCP sessions are open, the most this server keeps; \
                     end one (DELETE /mcp) or wait until idle ones expire",
                    shared.config.max_sessions
                ),
            );
        };
        minted = Some(id.clone());
        Some(id)
    } else {
        match header_str(&headers, SESSION_HEADER) {
            None => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    INVALID_REQUEST,
                    "Bad Request: Mcp-Session-Id header is required (send initialize first, or use protocol revision 2026-07-28)",
                );
            }
            Some(id) if !session_known(&shared, id, key) => {
                return error_response(
                    StatusCode::NOT_FOUND,
                    INVALID_REQUEST,
                    "Session not found: it expired or was terminated; initialize a new one",
                );
            }
            Some(id) => Some(id.to_owned()),
        }
    };
    let origin = header_str(&headers, "origin").map(str::to_owned);
    let incoming = Incoming {
        message: String::from_utf8_lossy(&bytes).into_owned(),
        session_id: session.clone(),
        protocol_version: Some(
            version
                .clone()
                .unwrap_or_else(|| protocol::HTTP_DEFAULT_VERSION.to_owned()),
        ),
        origin,
        mcp_method: header_str(&headers, "mcp-method").map(str::to_owned),
        // Already checked against the body above; handed over decoded.
        mcp_name: header_str(&headers, "mcp-name").and_then(protocol::decode_name_header),
        transport: "http",
        principal: principal.clone(),
    };

    if !protocol::has_request(&message) {
        // Notifications and responses: hand them over, answer 202 with no body.
        let outbound: Arc<dyn Outbound> = match &session {
            Some(id) => Arc::new(SessionOutbound {
                shared: shared.clone(),
                session: id.clone(),
            }),
            None => Arc::new(NoOutbound),
        };
        let _ = shared.handler.handle(incoming, outbound).await;
        return StatusCode::ACCEPTED.into_response();
    }

    let mut response = match mode {
        ReplyMode::Json => {
            let outbound: Arc<dyn Outbound> = match &session {
                Some(id) => Arc::new(SessionOutbound {
                    shared: shared.clone(),
                    session: id.clone(),
                }),
                None => Arc::new(NoOutbound),
            };
            match shared.handler.handle(incoming, outbound).await {
                Some(reply) => {
                    let status = if stateless {
                        stateless_status(&reply)
                    } else {
                        StatusCode::OK
                    };
                    json_response(status, reply)
                }
                None => StatusCode::ACCEPTED.into_response(),
            }
        }
        ReplyMode::Sse => {
            let (tx, rx) = mpsc::unbounded_channel();
            let outbound: Arc<dyn Outbound> = Arc::new(FrameOutbound(tx.clone()));
            let handler = shared.handler.clone();
            let task = tokio::spawn(async move {
                let reply = handler.handle(incoming, outbound).await;
                let _ = tx.send(Frame::Final(reply));
            });
            let guard = AbortOnDrop(task);
            let connection = shared.config.metrics.owned_connection("http-sse");
            let frames = futures_util::stream::unfold(
                (rx, false, guard, connection),
                |(mut rx, done, guard, connection)| async move {
                    if done {
                        return None;
                    }
                    match rx.recv().await? {
                        Frame::Note(m) => {
                            Some((sse_event("message", &m), (rx, false, guard, connection)))
                        }
                        Frame::Final(Some(m)) => {
                            Some((sse_event("message", &m), (rx, true, guard, connection)))
                        }
                        Frame::Final(None) => None,
                    }
                },
            );
            sse_response(until_shutdown(&shared, frames.boxed()))
        }
    };
    if let Some(id) = minted
        && let Ok(value) = HeaderValue::from_str(&id)
    {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    response
}

/// The status of a stateless reply: the protocol maps its error code (`404` for an unknown
/// method, `400` for header and version errors); a result, or a batch, is `200`.
fn stateless_status(reply: &str) -> StatusCode {
    protocol::reply_error_code(reply)
        .and_then(|code| StatusCode::from_u16(protocol::http_status(code)).ok())
        .unwrap_or(StatusCode::OK)
}

/// Checks the session header of a `GET` or `DELETE`; the session id on success.
fn require_session(
    shared: &Shared,
    headers: &HeaderMap,
    key: Option<&Principal>,
) -> std::result::Result<String, Response> {
    if let Ok(Some(_)) = protocol_version(headers).map(|v| v.filter(|v| protocol::is_stateless(v)))
    {
        return Err(error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            INVALID_REQUEST,
            "Method Not Allowed: protocol revision 2026-07-28 has no GET stream or sessions",
        ));
    }
    match header_str(headers, SESSION_HEADER) {
        None => Err(error_response(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "Bad Request: Mcp-Session-Id header is required",
        )),
        Some(id) if !session_known(shared, id, key) => Err(error_response(
            StatusCode::NOT_FOUND,
            INVALID_REQUEST,
            "Session not found: it expired or was terminated; initialize a new one",
        )),
        Some(id) => Ok(id.to_owned()),
    }
}

/// Clears the session's stream slot when the `GET` stream ends.
struct StreamSlot {
    shared: Arc<Shared>,
    session: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut sessions) = self.shared.sessions.lock()
            && let Some(s) = sessions.get_mut(&self.session)
            && s.stream.as_ref().is_some_and(|tx| tx.is_closed())
        {
            s.stream = None;
        }
    }
}

/// `GET /mcp`: the session's server-to-client stream.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    principal: Option<Extension<Principal>>,
    headers: HeaderMap,
) -> Response {
    let session = match require_session(&shared, &headers, principal.as_ref().map(|e| &e.0)) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !header_str(&headers, "accept").is_some_and(|a| a.contains("text/event-stream")) {
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            INVALID_REQUEST,
            "Not Acceptable: GET /mcp needs Accept: text/event-stream",
        );
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    {
        let Ok(mut sessions) = shared.sessions.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let Some(entry) = sessions.get_mut(&session) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        if entry.stream.as_ref().is_some_and(|s| !s.is_closed()) {
            return error_response(
                StatusCode::CONFLICT,
                INVALID_REQUEST,
                "Conflict: this session already has an open GET stream",
            );
        }
        entry.stream = Some(tx);
    }
    let slot = StreamSlot {
        shared: shared.clone(),
        session,
    };
    let connection = shared.config.metrics.owned_connection("http-sse");
    let frames = futures_util::stream::poll_fn(move |cx| {
        let _keep = (&slot, &connection);
        rx.poll_recv(cx)
    })
    .map(|m| sse_event("message", &m));
    // Flush the headers at once so the client knows the stream is open.
    let opening = futures_util::stream::once(async { ":\n\n".to_owned() });
    sse_response(until_shutdown(&shared, opening.chain(frames).boxed()))
}

/// `DELETE /mcp`: ends a session.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    principal: Option<Extension<Principal>>,
    headers: HeaderMap,
) -> Response {
    let session = match require_session(&shared, &headers, principal.as_ref().map(|e| &e.0)) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Ok(mut sessions) = shared.sessions.lock() {
        sessions.remove(&session);
    }
    shared.handler.end_session(&session);
    StatusCode::OK.into_response()
}
