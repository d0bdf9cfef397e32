//! What an HTTP-based transport listens on and what it accepts.

use cortex_mcp::metrics::Metrics;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Default port for MCP over HTTP (as in the seed).
pub const DEFAULT_PORT: u16 = 9999;
/// Default largest accepted request body (or WebSocket message), in bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Environment variable with a comma-separated list of allowed `Origin` values (`*` for any).
pub const ALLOWED_ORIGINS_ENV: &str = "CORTEX_ALLOWED_ORIGINS";

/// Listening address and request limits shared by the HTTP and WebSocket transports.
#[derive(Clone)]
pub struct HttpConfig {
    /// Interface to bind; loopback by default, as the MCP spec advises for local servers.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Origins browsers may call from. Empty means loopback origins only
    /// (`http://localhost`, `http://127.0.0.1`, `http://[::1]`, any port); `*` allows any.
    /// Requests without an `Origin` header (non-browser clients) are always accepted.
    pub allowed_origins: Vec<String>,
    /// Largest request body (or WebSocket message) accepted, in bytes.
    pub max_body_bytes: usize,
    /// Advertise the legacy HTTP+SSE endpoints (`cortex mcp start --transport sse`).
    pub legacy_sse_primary: bool,
    /// Where request counts, latencies and connection gauges go; share it with the MCP server.
    pub metrics: Arc<Metrics>,
    /// Most Streamable HTTP sessions open at once; `initialize` beyond it gets 503 (after
    /// sessions idle past `session_idle` are ended).
    pub max_sessions: usize,
    /// How long a session may go unused before it ends.
    pub session_idle: Duration,
}

/// Default cap on open MCP sessions.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
/// Default idle time after which an MCP session ends.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(30 * 60);

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            host: "127.0.0.1".to_owned(),
            port: DEFAULT_PORT,
            allowed_origins: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            legacy_sse_primary: false,
            metrics: Arc::default(),
            max_sessions: DEFAULT_MAX_SESSIONS,
            session_idle: DEFAULT_SESSION_IDLE,
        }
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("allowed_origins", &self.allowed_origins)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("legacy_sse_primary", &self.legacy_sse_primary)
            .field("max_sessions", &self.max_sessions)
            .field("session_idle", &self.session_idle)
            .finish_non_exhaustive()
    }
}

impl HttpConfig {
    /// Defaults, with `allowed_origins` read from `CORTEX_ALLOWED_ORIGINS` when it is set.
    pub fn from_env() -> Self {
        let mut config = HttpConfig::default();
        if let Ok(list) = std::env::var(ALLOWED_ORIGINS_ENV) {
            config.allowed_origins = parse_origins(&list);
        }
        config
    }

    /// `host:port`, bracketing IPv6 literals.
    pub fn address(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether a request carrying `origin` may be served (DNS-rebinding protection).
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        let origin = origin.trim_end_matches('/');
        if self.allowed_origins.is_empty() {
            return is_loopback_origin(origin);
        }
        self.allowed_origins
            .iter()
            .any(|allowed| allowed == "*" || allowed.trim_end_matches('/') == origin)
    }
}

/// Splits a comma-separated origin list, dropping blanks.
pub fn parse_origins(list: &str) -> Vec<String> {
    list.split(',')
        .map(|s| s.trim().trim_end_matches('/').to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn is_loopback_origin(origin: &str) -> bool {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let Some(rest) = rest else {
        return false;
    };
    let host = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, port)) if port.is_empty() || port.starts_with(':') => h,
            _ => return false,
        }
    } else {
        match rest.split_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            Some(_) => return false,
            None => rest,
        }
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins_pass_by_default_and_others_do_not() {
        let c = HttpConfig::default();
        assert!(c.origin_allowed(None));
        assert!(c.origin_allowed(Some("http://localhost:3000")));
        assert!(c.origin_allowed(Some("http://127.0.0.1")));
        assert!(c.origin_allowed(Some("http://[::1]:8080")));
        assert!(!c.origin_allowed(Some("http://evil.example")));
        assert!(!c.origin_allowed(Some("http://localhost.evil.example")));
        assert!(!c.origin_allowed(Some("null")));
    }

    #[test]
    fn configured_origins_replace_the_default() {
        let c = HttpConfig {
            allowed_origins: parse_origins("http://localhost:3000, https://app.example/"),
            ..HttpConfig::default()
        };
        assert!(c.origin_allowed(Some("https://app.example")));
        assert!(!c.origin_allowed(Some("http://localhost:4000")));
    }
}
