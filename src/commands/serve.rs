//! `cortex serve`: the REST API, MCP over HTTP (mounted on the same server, behind the same API
//! keys) and the operational endpoints, on one port. Wiring only: the routes and layers are
//! `cortex-rest`, the operations the MCP server's tools.

use crate::commands::mcp::{Built, build_server};
use crate::config::Settings;
use clap::Args;
use cortex_core::access::ApiKeys;
use cortex_core::{Error, Result};
use cortex_mcp::metrics::Metrics;
use cortex_rest::{RATE_LIMIT_ENV, RestConfig, Service};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How `cortex serve` writes its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

fn init_logs(format: LogFormat, level: tracing::Level) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false);
    // A second init (tests run several servers in one process) keeps the first.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Interface to bind (loopback by default; 0.0.0.0 in a container).
    #[arg(long, env = "CORTEX_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to bind; 0 picks a free one.
    #[arg(long, env = "CORTEX_PORT", default_value_t = cortex_rest::DEFAULT_PORT)]
    port: u16,
    /// Requests per second each API key may make (also its burst); 0 turns the limit off.
    #[arg(long, env = RATE_LIMIT_ENV, default_value_t = cortex_rest::DEFAULT_RATE_LIMIT)]
    rate_limit: u32,
    /// Browser origins allowed, comma-separated (`*` for any); default loopback only.
    #[arg(long, env = "CORTEX_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// Largest request body in bytes.
    #[arg(long, env = "CORTEX_MAX_BODY_BYTES", default_value_t = cortex_rest::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Longest a REST request may take, in seconds (408 after it).
    #[arg(long, env = "CORTEX_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    request_timeout_secs: u64,
    /// Most MCP sessions open at once (initialize beyond it gets 503).
    #[arg(long, env = "CORTEX_MAX_SESSIONS", default_value_t = cortex_rest::DEFAULT_MAX_SESSIONS)]
    max_sessions: usize,
    /// Seconds an MCP session may stay unused before it ends.
    #[arg(long, env = "CORTEX_SESSION_IDLE_SECS", default_value_t = 1800)]
    session_idle_secs: u64,
    /// Seconds a client may take to send a request's headers before the connection is closed.
    #[arg(long, env = "CORTEX_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    header_read_timeout_secs: u64,
    /// Log format on stderr: text, or json (one object per line).
    #[arg(long, env = "CORTEX_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log level: error, warn, info (default: every request) or debug.
    #[arg(long, env = "CORTEX_LOG", default_value = "info")]
    log_level: tracing::Level,
    /// Serve without API keys: anyone who reaches the port may read and write. For a loopback
    /// development server only.
    #[arg(long)]
    no_auth: bool,
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl ServeArgs {
    /// Takes each setting of `[serve]` that no flag or environment variable gave.
    pub fn apply_file(
        &mut self,
        f: &crate::config_file::ServeFile,
        m: &clap::ArgMatches,
    ) -> Result<()> {
        use crate::config_file::given;
        macro_rules! take {
            ($($field:ident),*) => {$(
                if given(m, stringify!($field)).is_none()
                    && let Some(v) = &f.$field
                {
                    self.$field = v.clone();
                }
            )*};
        }
        take!(
            host,
            port,
            rate_limit,
            allowed_origins,
            max_body_bytes,
            request_timeout_secs,
            header_read_timeout_secs,
            max_sessions,
            session_idle_secs,
            no_auth
        );
        if given(m, "log_format").is_none()
            && let Some(v) = &f.log_format
        {
            self.log_format = <LogFormat as clap::ValueEnum>::from_str(v, true).map_err(|_| {
                Error::config(format!("[serve] log_format {v:?} is not text or json"))
            })?;
        }
        if given(m, "log_level").is_none()
            && let Some(v) = &f.log_level
        {
            self.log_level = v.parse().map_err(|_| {
                Error::config(format!(
                    "[serve] log_level {v:?} is not error, warn, info, debug or trace"
                ))
            })?;
        }
        Ok(())
    }

    /// Each setting with its value and where it came from, for `cortex config show`.
    pub fn describe(
        &self,
        m: &clap::ArgMatches,
        f: Option<&crate::config_file::ServeFile>,
    ) -> Vec<(String, serde_json::Value, &'static str)> {
        use crate::config_file::source;
        let f = f.cloned().unwrap_or_default();
        let row = |id: &str, v: serde_json::Value, in_file: bool| {
            (format!("serve.{id}"), v, source(m, id, in_file).name())
        };
        vec![
            row("host", json!(self.host), f.host.is_some()),
            row("port", json!(self.port), f.port.is_some()),
            row("rate_limit", json!(self.rate_limit), f.rate_limit.is_some()),
            row(
                "allowed_origins",
                json!(self.allowed_origins),
                f.allowed_origins.is_some(),
            ),
            row(
                "max_body_bytes",
                json!(self.max_body_bytes),
                f.max_body_bytes.is_some(),
            ),
            row(
                "request_timeout_secs",
                json!(self.request_timeout_secs),
                f.request_timeout_secs.is_some(),
            ),
            row(
                "header_read_timeout_secs",
                json!(self.header_read_timeout_secs),
                f.header_read_timeout_secs.is_some(),
            ),
            row(
                "max_sessions",
                json!(self.max_sessions),
                f.max_sessions.is_some(),
            ),
            row(
                "session_idle_secs",
                json!(self.session_idle_secs),
                f.session_idle_secs.is_some(),
            ),
            row(
                "log_format",
                json!(format!("{:?}", self.log_format).to_lowercase()),
                f.log_format.is_some(),
            ),
            row(
                "log_level",
                json!(self.log_level.to_string().to_lowercase()),
                f.log_level.is_some(),
            ),
            row("no_auth", json!(self.no_auth), f.no_auth.is_some()),
        ]
    }
}

/// What the binary's plugins add: MCP over WebSocket at `/ws` (behind the keys) and the
/// tlog-tiles view under `/tiles` (public; SHA-256 ledgers only).
fn mounts(
    config: &RestConfig,
    service: &Arc<Service>,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<cortex_rest::Mounts> {
    let mut mounts = cortex_rest::Mounts::default();
    #[cfg(feature = "websocket")]
    {
        let ws = config.http_config(service.metrics.clone());
        mounts.protected =
            cortex_websocket::WebSocketTransport::upgrade_router(ws, service.mcp.clone(), stopped);
    }
    #[cfg(not(feature = "websocket"))]
    let _ = (config, stopped);
    #[cfg(feature = "tiles")]
    if service.ledger.hasher().algorithm() == cortex_core::HashAlgorithm::Sha256 {
        mounts.public = axum::Router::new().nest("/tiles", cortex_tiles::router(&service.ledger)?);
    }
    Ok(mounts)
}

pub fn serve(s: &Settings, a: ServeArgs) -> Result<u8> {
    init_logs(a.log_format, a.log_level);
    let metrics = Arc::new(Metrics::new());
    let Built {
        server,
        memory,
        ledger,
        anchoring: _anchoring,
        anchors,
    } = build_server(s, metrics.clone())?;
    let keys = ApiKeys::new(ledger.clone());
    let config = RestConfig {
        host: a.host,
        port: a.port,
        allowed_origins: a.allowed_origins,
        max_body_bytes: a.max_body_bytes,
        rate_limit: a.rate_limit,
        request_timeout: Duration::from_secs(a.request_timeout_secs.max(1)),
        max_sessions: a.max_sessions.max(1),
        session_idle: Duration::from_secs(a.session_idle_secs.max(1)),
        header_read_timeout: Duration::from_secs(a.header_read_timeout_secs.max(1)),
        auth: !a.no_auth,
        ..RestConfig::default()
    };
    if config.auth && !keys.any_active()? {
        tracing::warn!(
            "no API key exists yet, so every request to /v1 and /mcp gets 401; create one with \
             `cortex keys api create --name NAME --role admin`"
        );
    }
    if !config.auth {
        tracing::warn!(
            "--no-auth: anyone who can reach {} may read and write this ledger",
            config.address()
        );
    }
    let (l, m) = (ledger.clone(), memory.clone());
    let ready: cortex_rest::ReadyFn = Arc::new(move || {
        let head = l
            .head()
            .map_err(|e| format!("the database is unreachable: {e}"))?;
        let version = m
            .version()
            .map_err(|e| format!("the memory tables cannot be read: {e}"))?;
        // Idempotent: reads the schema version, and refuses a database migrated by a newer
        // cortex than this one.
        let schema = l
            .store()
            .migrate()
            .map_err(|e| format!("the database schema is not current: {e}"))?;
        Ok(
            json!({"database": "reachable", "entries": head.size, "memory_version": version,
            "schema_version": schema.to_version}),
        )
    });
    let (l, started) = (ledger.clone(), std::time::Instant::now());
    metrics.set_gauges(Arc::new(move || {
        let mut g = vec![(
            "cortex_uptime_seconds".to_owned(),
            "Seconds since this server started.".to_owned(),
            started.elapsed().as_secs_f64(),
        )];
        if let Ok(head) = l.head() {
            g.push((
                "cortex_ledger_entries".into(),
                "Entries in the ledger.".into(),
                head.size as f64,
            ));
        }
        if let Ok(Some(cp)) = l.store().latest_checkpoint() {
            g.push((
                "cortex_checkpoint_size".into(),
                "Entries the latest checkpoint covers.".into(),
                cp.size as f64,
            ));
            if let Ok(at) = chrono::DateTime::parse_from_rfc3339(&cp.created_at) {
                let age = chrono::Utc::now().signed_duration_since(at);
                g.push((
                    "cortex_checkpoint_age_seconds".into(),
                    "Seconds since the latest checkpoint was signed.".into(),
                    age.num_milliseconds() as f64 / 1e3,
                ));
            }
        }
        g
    }));
    let service = Arc::new(Service {
        mcp: Arc::new(server),
        memory,
        ledger,
        keys,
        metrics,
        ready,
        anchors,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::backend("cannot start the async runtime").with_source(e))?;
    let served = runtime.block_on(async {
        let listener = cortex_rest::bind(&config).await?;
        let address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| config.address());
        tracing::info!(
            %address,
            auth = config.auth,
            rate_limit = config.rate_limit,
            "cortex serve on http://{address} (REST /v1, MCP /mcp and /ws, /health, /ready, \
             /metrics, /openapi.json; auth {})",
            if config.auth { "on" } else { "OFF" }
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mounts = mounts(&config, &service, stopped.clone())?;
        let router = cortex_rest::routes::router(&config, service.clone(), stopped, mounts);
        cortex_rest::serve(
            listener,
            router,
            config.header_read_timeout,
            shutdown_signal(),
            stop,
        )
        .await
    });
    drop(runtime);
    drop(service);
    served?;
    Ok(0)
}
