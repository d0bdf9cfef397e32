//! The `/v1` routes, as one table ([`ROUTES`]) that the router and the OpenAPI document are
//! both built from.
//!
//! A route either runs an MCP tool's operation ([`Op::Tool`]: its arguments are the JSON body
//! for `POST`, or the query string for `GET`, each value typed by the tool's input schema,
//! plus the path's parameters) or a read served straight from `cortex-core` ([`Op::Read`]).
//! Errors are `{"error": {"kind": …, "message": …}}` with the status their kind implies.

use crate::Service;
use crate::auth::{AuthState, Limiter, authenticate, rate_limit};
use crate::openapi;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Query, RawPathParams, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, get, on};
use cortex_core::access::{Principal, Role};
use cortex_core::ledger::export::{ExportFormat, write_export_with};
use cortex_core::{Error, ErrorKind};
use cortex_mcp::registry::Caller;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// A route's operation.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// Runs MCP tool `name`; `fixed` are arguments the route sets itself.
    Tool {
        /// The tool.
        name: &'static str,
    },
    /// A read served from `cortex-core`.
    Read(ReadOp),
}

/// The reads without an MCP tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOp {
    /// `read_status`.
    Status,
    /// A range of entries.
    Entries,
    /// A consistency proof.
    Consistency,
    /// An export (JSON Lines or CSV).
    Export,
    /// One fact.
    Fact,
    /// A fact's votes.
    Votes,
    /// An agent's reputation.
    Agent,
    /// The MCP server's health.
    McpHealth,
}

/// One `/v1` route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// axum path (`{param}`).
    pub path: &'static str,
    /// What it runs.
    pub op: Op,
    /// OpenAPI operation id.
    pub id: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Status of a success (200, or 201 for a store).
    pub status: u16,
}

const fn tool(
    method: &'static str,
    path: &'static str,
    name: &'static str,
    id: &'static str,
    summary: &'static str,
) -> Route {
    Route {
        method,
        path,
        op: Op::Tool { name },
        id,
        summary,
        status: 200,
    }
}

const fn read(path: &'static str, op: ReadOp, id: &'static str, summary: &'static str) -> Route {
    Route {
        method: "GET",
        path,
        op: Op::Read(op),
        id,
        summary,
        status: 200,
    }
}

/// Every `/v1` route.
pub const ROUTES: &[Route] = &[
    read(
        "/v1/ledger/status",
        ReadOp::Status,
        "ledgerStatus",
        "The ledger's size, head, latest checkpoint, last verification and anchors",
    ),
    read(
        "/v1/ledger/entries",
        ReadOp::Entries,
        "ledgerEntries",
        "Entries from `from` (default 0), at most `limit` (default 100, at most 1000)",
    ),
    tool(
        "POST",
        "/v1/ledger/checkpoint",
        "cortex_ledger_checkpoint",
        "ledgerCheckpoint",
        "Signs a checkpoint of every committed entry (or returns the latest if it covers them)",
    ),
    tool(
        "GET",
        "/v1/ledger/verify",
        "cortex_ledger_verify",
        "ledgerVerify",
        "Verifies every entry, the chain, the tiles, every checkpoint signature and the memory",
    ),
    Route {
        method: "POST",
        ..read(
            "/v1/ledger/export",
            ReadOp::Export,
            "ledgerExport",
            "Streams an export (JSON Lines, JSON or CSV) of the entries the latest checkpoint covers",
        )
    },
    tool(
        "GET",
        "/v1/ledger/proofs/inclusion/{index}",
        "cortex_ledger_proof",
        "inclusionProof",
        "A c2sp.org/tlog-proof@v1 inclusion proof of one entry against the latest checkpoint",
    ),
    read(
        "/v1/ledger/proofs/consistency",
        ReadOp::Consistency,
        "consistencyProof",
        "An RFC 9162 consistency proof from size `old` to size `new` (default: the latest checkpoint)",
    ),
    Route {
        status: 201,
        ..tool(
            "POST",
            "/v1/facts",
            "cortex_store",
            "storeFacts",
            "Stores one fact, or a batch (`facts`), each as a ledger entry, atomically",
        )
    },
    Route {
        status: 201,
        ..tool(
            "POST",
            "/v1/facts/batch",
            "cortex_store",
            "storeFactBatch",
            "Stores a batch of facts (`facts`) in one atomic transaction",
        )
    },
    read("/v1/facts/{fact_id}", ReadOp::Fact, "getFact", "One fact"),
    tool(
        "GET",
        "/v1/facts/{fact_id}/history",
        "cortex_history",
        "factHistory",
        "A fact, its votes and its ledger entries in order",
    ),
    tool(
        "POST",
        "/v1/facts/{fact_id}/deprecate",
        "cortex_deprecate",
        "deprecateFact",
        "Marks a fact deprecated (it stays in history and in the ledger)",
    ),
    tool(
        "POST",
        "/v1/facts/{fact_id}/forget",
        "cortex_forget",
        "forgetFact",
        "Erases a fact's content for good (admin); every proof stays valid",
    ),
    tool(
        "POST",
        "/v1/facts/{fact_id}/votes",
        "cortex_vote",
        "voteOnFact",
        "Votes +1 or -1 on a fact as the API key's identity",
    ),
    read(
        "/v1/facts/{fact_id}/votes",
        ReadOp::Votes,
        "factVotes",
        "A fact's current votes",
    ),
    tool(
        "GET",
        "/v1/search",
        "cortex_search",
        "searchFacts",
        "Ranked search over facts: keyword (BM25), semantic or hybrid",
    ),
    tool(
        "GET",
        "/v1/recall",
        "cortex_recall",
        "recallProject",
        "A project's facts valid now, by consensus then recency",
    ),
    tool(
        "GET",
        "/v1/projects/{project}/history",
        "cortex_history",
        "projectHistory",
        "A project's facts, deprecated ones included, newest first",
    ),
    read(
        "/v1/agents/{agent}",
        ReadOp::Agent,
        "getAgent",
        "An agent's reputation",
    ),
    tool(
        "GET",
        "/v1/mcp/metrics",
        "cortex_metrics",
        "mcpMetrics",
        "The server's metrics",
    ),
    read(
        "/v1/mcp/health",
        ReadOp::McpHealth,
        "mcpHealth",
        "Whether the MCP server's database is reachable",
    ),
];

impl Route {
    /// The names of the path's parameters.
    pub fn path_params(&self) -> Vec<&'static str> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect()
    }
}

/// The JSON error body every failure carries.
pub fn error_response(status: StatusCode, kind: ErrorKind, message: &str) -> Response {
    json_text(
        status,
        json!({"error": {"kind": kind.as_str(), "message": message}}).to_string(),
    )
}

fn json_text(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The HTTP status of an error kind.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error(e: &Error) -> Response {
    error_response(status_of(e.kind()), e.kind(), &e.to_string())
}

/// Types a query or path value by the schema of the argument it fills.
fn typed(schema: &Value, name: &str, raw: &str) -> Result<Value, Error> {
    let ty = schema["properties"][name]["type"]
        .as_str()
        .unwrap_or("string");
    let bad = |what: &str| Error::invalid(format!("{name} must be {what}, got {raw:?}"));
    match ty {
        "integer" => raw
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| bad("an integer")),
        "number" => raw
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::from)
            .ok_or_else(|| bad("a number")),
        "boolean" => match raw {
            "true" | "1" => Ok(Value::Bool(true)),
            "false" | "0" => Ok(Value::Bool(false)),
            _ => Err(bad("true or false")),
        },
        _ => Ok(Value::String(raw.to_owned())),
    }
}

/// The caller of a REST request.
fn caller(principal: Option<Principal>) -> Caller {
    Caller {
        client: None,
        surface: "rest".into(),
        principal,
    }
}

async fn run_tool(
    svc: Arc<Service>,
    route: &'static Route,
    name: &'static str,
    principal: Option<Principal>,
    path: RawPathParams,
    query: HashMap<String, String>,
    body: Bytes,
) -> Response {
    let Some(schema) = svc.mcp.tool_input_schema(name) else {
        return error(&Error::not_found(format!("no operation {name}")));
    };
    let mut args = if route.method == "POST" {
        if !query.is_empty() {
            let names: Vec<&str> = query.keys().map(String::as_str).collect();
            return error(&Error::invalid(format!(
                "POST {} takes its arguments in a JSON body, not the query string ({})",
                route.path,
                names.join(", ")
            )));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return error(&Error::invalid("the request body must be a JSON object")),
                Err(e) => {
                    return error(&Error::invalid(format!(
                        "the request body is not valid JSON: {e}"
                    )));
                }
            }
        }
    } else {
        let mut m = Map::new();
        for (k, v) in &query {
            if !schema["properties"].get(k).is_some_and(Value::is_object) {
                return error(&Error::invalid(format!(
                    "unknown query parameter {k:?} for GET {}",
                    route.path
                )));
            }
            match typed(schema, k, v) {
                Ok(v) => m.insert(k.clone(), v),
                Err(e) => return error(&e),
            };
        }
        m
    };
    for (k, v) in &path {
        if args.contains_key(k) {
            return error(&Error::invalid(format!(
                "{k} is given by the path; leave it out of the body"
            )));
        }
        match typed(schema, k, v) {
            Ok(v) => args.insert(k.to_owned(), v),
            Err(e) => return error(&e),
        };
    }
    match svc.mcp.invoke(name, args, &caller(principal)).await {
        Ok(text) => json_text(
            StatusCode::from_u16(route.status).unwrap_or(StatusCode::OK),
            text.to_string(),
        ),
        Err(e) => error(&e),
    }
}

fn param<T: std::str::FromStr>(
    from: &HashMap<String, String>,
    name: &str,
    what: &str,
) -> Result<Option<T>, Error> {
    from.get(name)
        .map(|v| {
            v.parse()
                .map_err(|_| Error::invalid(format!("{name} must be {what}, got {v:?}")))
        })
        .transpose()
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::backend(format!("cannot encode a result: {e}")))
}

/// The largest `limit` of `GET /v1/ledger/entries`.
pub const MAX_ENTRIES: u64 = 1000;

fn read_op(
    svc: &Service,
    op: ReadOp,
    path: &HashMap<String, String>,
    query: &HashMap<String, String>,
) -> Result<Value, Error> {
    let allowed: &[&str] = match op {
        ReadOp::Entries => &["from", "limit"],
        ReadOp::Consistency => &["old", "new"],
        _ => &[],
    };
    if let Some(k) = query.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Error::invalid(format!("unknown query parameter {k:?}")));
    }
    let fact_id = || -> Result<u64, Error> {
        param(path, "fact_id", "a non-negative integer")?
            .ok_or_else(|| Error::invalid("fact_id is required"))
    };
    match op {
        ReadOp::Status => encode(&cortex_core::ledger::status::read_status(
            &svc.ledger,
            &svc.anchors,
        )?),
        ReadOp::Entries => {
            let from: u64 = param(query, "from", "a non-negative integer")?.unwrap_or(0);
            let limit: u64 = param(query, "limit", "an integer from 1 to 1000")?.unwrap_or(100);
            if !(1..=MAX_ENTRIES).contains(&limit) {
                return Err(Error::invalid(format!(
                    "limit must be an integer from 1 to {MAX_ENTRIES}, got {limit}"
                )));
            }
            let size = svc.ledger.head()?.size;
            let end = from.saturating_add(limit).min(size);
            let mut entries = Vec::new();
            if from < end {
                svc.ledger.store().scan_entries(from..end, &mut |r| {
                    let e = r.entry;
                    entries.push(json!({
                        "index": e.index, "timestamp": e.timestamp, "project": e.project,
                        "action": e.action,
                        "detail": serde_json::from_str::<Value>(e.detail)
                            .unwrap_or_else(|_| Value::String(e.detail.to_owned())),
                        "hash": hex::encode(r.hash),
                    }));
                    Ok(())
                })?;
            }
            Ok(json!({"entries": entries, "count": entries.len(), "from": from, "size": size}))
        }
        ReadOp::Consistency => {
            let latest = svc.ledger.store().latest_checkpoint()?.map(|c| c.size);
            let old: u64 = param(query, "old", "a non-negative integer")?
                .ok_or_else(|| Error::invalid("old (the smaller tree size) is required"))?;
            let new: u64 = match param(query, "new", "a non-negative integer")? {
                Some(n) => n,
                None => latest.ok_or_else(|| {
                    Error::invalid("the ledger has no checkpoint yet: give `new`")
                })?,
            };
            let proof = svc.ledger.consistency_proof(old, new)?;
            Ok(json!({"old": old, "new": new,
                "proof": proof.iter().map(|h| h.to_base64()).collect::<Vec<_>>()}))
        }
        ReadOp::Fact => encode(&svc.memory.fact(fact_id()?)?),
        ReadOp::Votes => {
            let votes = svc.memory.votes(fact_id()?)?;
            Ok(json!({"votes": encode(&votes)?, "count": votes.len()}))
        }
        ReadOp::Agent => {
            let agent = path.get("agent").map(String::as_str).unwrap_or("");
            encode(&svc.memory.agent(agent)?)
        }
        ReadOp::McpHealth => match svc.mcp.check_health() {
            Ok(()) => Ok(json!({"status": "ok"})),
            Err(e) => Err(Error::new(ErrorKind::Unavailable, e)),
        },
        ReadOp::Export => Err(Error::invalid("export is streamed")),
    }
}

async fn run_read(
    svc: Arc<Service>,
    op: ReadOp,
    principal: Option<Principal>,
    path: RawPathParams,
    query: HashMap<String, String>,
) -> Response {
    if let Some(p) = &principal
        && let Err(e) = p.require(Role::Read, "this read")
    {
        return error(&e);
    }
    let path: HashMap<String, String> = path
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if op == ReadOp::Export {
        return export(svc, query).await;
    }
    let outcome = tokio::task::spawn_blocking(move || read_op(&svc, op, &path, &query)).await;
    match outcome {
        Ok(Ok(v)) => json_text(StatusCode::OK, v.to_string()),
        Ok(Err(e)) => error(&e),
        Err(_) => error(&Error::backend("the read failed unexpectedly")),
    }
}

/// A `Write` that hands 64 KiB chunks to the response body.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.tx
                .blocking_send(Ok(chunk))
                .map_err(|_| std::io::Error::other("the client went away"))?;
        }
        Ok(())
    }
}

async fn export(svc: Arc<Service>, query: HashMap<String, String>) -> Response {
    let parsed = (|| -> Result<_, Error> {
        if let Some(k) = query
            .keys()
            .find(|k| !["format", "from", "to"].contains(&k.as_str()))
        {
            return Err(Error::invalid(format!("unknown query parameter {k:?}")));
        }
        let format = ExportFormat::parse(query.get("format").map_or("jsonl", String::as_str))?;
        let from: Option<u64> = param(&query, "from", "a non-negative integer")?;
        let to: Option<u64> = param(&query, "to", "a non-negative integer")?;
        let Some(cp) = svc.ledger.store().latest_checkpoint()? else {
            return Err(Error::invalid(
                "the ledger has no checkpoint yet: POST /v1/ledger/checkpoint first",
            ));
        };
        // The range is checked before the 200 goes out: once the body streams, an error can
        // only cut the transfer short. (A checkpoint covers at least one entry.)
        let last = cp.size - 1;
        let (first, end) = (from.unwrap_or(0), to.unwrap_or(last));
        if end > last {
            return Err(Error::invalid(format!(
                "to {end} is not covered by the latest checkpoint (entries 0 to {last}): POST \
                 /v1/ledger/checkpoint first, or export up to {last}"
            )));
        }
        if first > end {
            return Err(Error::invalid(format!("from {first} is after to {end}")));
        }
        Ok((format, from, to))
    })();
    let (format, from, to) = match parsed {
        Ok(p) => p,
        Err(e) => return error(&e),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let err_tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = ChunkWriter {
            buf: Vec::new(),
            tx,
        };
        let store = svc.memory.store().clone();
        let openings =
            |e: &cortex_core::EntryRef<'_>| cortex_core::memory::audit::export_opening(&*store, e);
        let result = write_export_with(&svc.ledger, format, from, to, &mut w, &|_| {}, &openings)
            .and_then(|_| {
                std::io::Write::flush(&mut w)
                    .map_err(|e| Error::backend("the export could not be sent").with_source(e))
            });
        if let Err(e) = result {
            // The status is already sent: end the body with an error, which the client sees
            // as a truncated transfer.
            let _ = err_tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut r = Response::new(Body::from_stream(stream));
    let ct = match format {
        ExportFormat::Csv => "text/csv",
        ExportFormat::Json => "application/json",
        ExportFormat::Jsonl => "application/jsonl",
    };
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

/// Records each request under its route, as `rest` in the metrics.
async fn observe(State(svc): State<Arc<Service>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = request.method().clone();
    let label = format!("{method} {route}");
    let started = Instant::now();
    let response = next.run(request).await;
    let key = response
        .extensions()
        .get::<Principal>()
        .map_or_else(|| "-".to_owned(), |p| p.key_id.clone());
    let status = response.status();
    let ok = !(status.is_client_error() || status.is_server_error());
    let elapsed = started.elapsed();
    svc.metrics.record_request("rest", &label, elapsed, ok);
    let latency_ms = elapsed.as_secs_f64() * 1e3;
    if status.is_server_error() {
        tracing::warn!(%method, %route, status = status.as_u16(), latency_ms, key = %key, "request");
    } else {
        tracing::info!(%method, %route, status = status.as_u16(), latency_ms, key = %key, "request");
    }
    response
}

/// Gives the errors the layers answer themselves (413, 408, 405, a bad query string) the same
/// JSON body as every other error.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let (kind, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            ErrorKind::InvalidInput,
            "the request body is larger than this server accepts".to_owned(),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            ErrorKind::Unavailable,
            "the request took longer than this server allows".to_owned(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            ErrorKind::InvalidInput,
            "this method is not allowed on this path (see /openapi.json)".to_owned(),
        ),
        StatusCode::NOT_FOUND => (
            ErrorKind::NotFound,
            "no such path (see /openapi.json)".to_owned(),
        ),
        _ => (
            if status.is_client_error() {
                ErrorKind::InvalidInput
            } else {
                ErrorKind::Backend
            },
            if text.trim().is_empty() {
                status.canonical_reason().unwrap_or("error").to_owned()
            } else {
                text.trim().to_owned()
            },
        ),
    };
    let mut r = error_response(status, kind, &message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            r.headers_mut().insert(name.clone(), value.clone());
        }
    }
    r
}

async fn health() -> Response {
    json_text(
        StatusCode::OK,
        json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}).to_string(),
    )
}

async fn ready(State(svc): State<Arc<Service>>) -> Response {
    let check = svc.ready.clone();
    match tokio::task::spawn_blocking(move || check()).await {
        Ok(Ok(details)) => json_text(
            StatusCode::OK,
            json!({"status": "ready", "checks": details}).to_string(),
        ),
        Ok(Err(why)) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Unavailable,
            &why,
        ),
        Err(_) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Unavailable,
            "the readiness check failed unexpectedly",
        ),
    }
}

async fn metrics(State(svc): State<Arc<Service>>) -> Response {
    // The gauges read the database: off the executor.
    let text = tokio::task::spawn_blocking(move || svc.metrics.render_prometheus())
        .await
        .unwrap_or_default();
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

fn cors(config: &crate::RestConfig) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("mcp-protocol-version"),
        ])
        .expose_headers([HeaderName::from_static("mcp-session-id")]);
    if config.allowed_origins.iter().any(|o| o == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        let origins: Vec<HeaderValue> = config
            .allowed_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        layer.allow_origin(AllowOrigin::list(origins))
    }
}

/// The whole server: `/v1`, MCP over HTTP, `/health`, `/ready`, `/metrics`, `/openapi.json`,
/// with every layer. MCP SSE streams end when `shutdown` turns true.
pub fn router(
    config: &crate::RestConfig,
    svc: Arc<Service>,
    shutdown: watch::Receiver<bool>,
    mounts: crate::Mounts,
) -> Router {
    let auth = Arc::new(AuthState::new(
        svc.keys.clone(),
        config.auth,
        config.key_cache_ttl,
    ));
    let limiter = Arc::new(Limiter::new(config.rate_limit));
    let mut v1 = Router::new();
    for route in ROUTES {
        let filter = if route.method == "POST" {
            MethodFilter::POST
        } else {
            MethodFilter::GET
        };
        let s = svc.clone();
        v1 = match route.op {
            Op::Tool { name } => v1.route(
                route.path,
                on(
                    filter,
                    move |path: RawPathParams,
                          Query(query): Query<HashMap<String, String>>,
                          principal: Option<axum::Extension<Principal>>,
                          body: Bytes| {
                        run_tool(s, route, name, principal.map(|p| p.0), path, query, body)
                    },
                ),
            ),
            Op::Read(op) => v1.route(
                route.path,
                on(
                    filter,
                    move |path: RawPathParams,
                          Query(query): Query<HashMap<String, String>>,
                          principal: Option<axum::Extension<Principal>>| {
                        run_read(s, op, principal.map(|p| p.0), path, query)
                    },
                ),
            ),
        };
    }
    let v1 = v1
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes));
    let mcp = cortex_http::HttpTransport::mcp_router(
        config.http_config(svc.metrics.clone()),
        svc.mcp.clone(),
        shutdown,
    );
    let document = Arc::new(openapi::document(&svc.mcp).to_string());
    let protected = v1
        .merge(mcp)
        .merge(mounts.protected)
        .merge(crate::dashboard::api_router(svc.clone()))
        .layer(middleware::from_fn_with_state(limiter, rate_limit))
        .layer(middleware::from_fn_with_state(auth, authenticate));
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(svc.clone())
        .merge(crate::dashboard::page_router())
        .route(
            "/openapi.json",
            get(move || {
                let d = document.clone();
                async move { json_text(StatusCode::OK, d.to_string()) }
            }),
        )
        .merge(protected)
        .merge(mounts.public)
        .route_layer(middleware::from_fn_with_state(svc, observe))
        .layer(middleware::from_fn(json_errors))
        .layer(cors(config))
}
