//! CORTEX as a service (`cortex serve`): one HTTP server with
//!
//! - the REST API under `/v1` ([`routes`]): ledger status, entries, checkpoint, verify, export,
//!   inclusion and consistency proofs; facts (store, batch, get, history, deprecate, forget),
//!   search, recall, votes, agents; MCP metrics and health. Each route that has an MCP tool
//!   runs that tool's operation through [`cortex_mcp::McpServer::invoke`] (same validation,
//!   access rule, cache and body), the others call `cortex-core` directly;
//! - MCP over HTTP (Streamable HTTP at `/mcp`, legacy HTTP+SSE at `/sse` and `/messages`)
//!   mounted from `cortex-http`, behind the same API keys;
//! - `/health` (liveness), `/ready` (database reachable, migrations current), `/metrics`
//!   (Prometheus) and `/openapi.json` (OpenAPI 3.1, generated from the route table and the
//!   tools' JSON Schemas, [`openapi`]), open without a key.
//!
//! Limits are layers, never code in handlers: API keys ([`auth`]), a per-key rate limit
//! (`governor`), CORS, body size and request timeouts (`tower-http`), the header-read timeout
//! and graceful shutdown of the connection loop ([`mod@serve`]), and the cap on MCP sessions with
//! idle expiry (`cortex-http`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod dashboard;
pub mod openapi;
pub mod routes;
pub mod serve;

use cortex_core::access::ApiKeys;
use cortex_core::ledger::Ledger;
use cortex_core::memory::AgentMemory;
use cortex_mcp::McpServer;
use cortex_mcp::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

pub use cortex_http::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_SESSIONS};
pub use serve::{bind, serve};

/// Default port of `cortex serve` (the seed's REST port).
pub const DEFAULT_PORT: u16 = 8484;
/// Requests per second each API key may make (0: no limit).
pub const RATE_LIMIT_ENV: &str = "CORTEX_RATE_LIMIT";
/// Default of [`RATE_LIMIT_ENV`].
pub const DEFAULT_RATE_LIMIT: u32 = 1000;

/// Checks that the server can serve: `Ok` with details, or `Err` naming what is wrong.
pub type ReadyFn = Arc<dyn Fn() -> std::result::Result<serde_json::Value, String> + Send + Sync>;

/// How `cortex serve` listens and what it accepts.
#[derive(Debug, Clone)]
pub struct RestConfig {
    /// Interface to bind.
    pub host: String,
    /// Port to bind (0 picks a free one).
    pub port: u16,
    /// Browser origins allowed (CORS and the MCP Origin check); empty: loopback only.
    pub allowed_origins: Vec<String>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Requests per second per API key (also the burst); 0 turns the limit off.
    pub rate_limit: u32,
    /// Longest a `/v1` request may take, body read included (408 after it).
    pub request_timeout: Duration,
    /// Longest a client may take to send a request's headers (the connection is closed after).
    pub header_read_timeout: Duration,
    /// Whether `/v1` and MCP need an API key. Off only on purpose (`--no-auth`).
    pub auth: bool,
    /// Most MCP sessions open at once.
    pub max_sessions: usize,
    /// Idle time after which an MCP session ends.
    pub session_idle: Duration,
    /// How long a checked API key is trusted before it is read again (revocation delay).
    pub key_cache_ttl: Duration,
}

impl Default for RestConfig {
    fn default() -> Self {
        RestConfig {
            host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            allowed_origins: Vec::new(),
            max_body_bytes: cortex_http::DEFAULT_MAX_BODY_BYTES,
            rate_limit: DEFAULT_RATE_LIMIT,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            auth: true,
            max_sessions: cortex_http::DEFAULT_MAX_SESSIONS,
            session_idle: cortex_http::DEFAULT_SESSION_IDLE,
            key_cache_ttl: Duration::from_secs(2),
        }
    }
}

impl RestConfig {
    /// `host:port`, bracketing IPv6 literals.
    pub fn address(&self) -> String {
        self.http_config(Arc::default()).address()
    }

    /// The settings the MCP transports mounted on this server (HTTP, WebSocket) take from it,
    /// recording into `metrics`.
    pub fn http_config(&self, metrics: Arc<Metrics>) -> cortex_http::HttpConfig {
        cortex_http::HttpConfig {
            host: self.host.clone(),
            port: self.port,
            allowed_origins: self.allowed_origins.clone(),
            max_body_bytes: self.max_body_bytes,
            legacy_sse_primary: false,
            metrics,
            max_sessions: self.max_sessions,
            session_idle: self.session_idle,
        }
    }
}

/// Routes a deployment adds (the binary's plugins): `protected` ones go behind the API-key and
/// rate-limit layers (MCP over WebSocket at `/ws`), `public` ones do not (the tlog-tiles view
/// under `/tiles`, which is public by design).
#[derive(Debug, Default)]
pub struct Mounts {
    /// Routes behind the keys.
    pub protected: axum::Router,
    /// Open routes.
    pub public: axum::Router,
}

/// What the routes serve.
pub struct Service {
    /// The MCP server: its tools are the operations the REST routes run.
    pub mcp: Arc<McpServer>,
    /// The agent memory.
    pub memory: Arc<AgentMemory>,
    /// The ledger.
    pub ledger: Arc<Ledger>,
    /// The API keys (in the ledger's store).
    pub keys: ApiKeys,
    /// Request metrics, shared with the MCP server.
    pub metrics: Arc<Metrics>,
    /// `/ready`'s check.
    pub ready: ReadyFn,
    /// The policy's anchors, for the status.
    pub anchors: Vec<(String, String)>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}
