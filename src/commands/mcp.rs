//! `cortex mcp start`: serves the agent memory and the ledger over MCP on
//! stdio, Streamable HTTP, legacy HTTP+SSE or WebSocket. Wiring only: the protocol is
//! `cortex_mcp`, the transports are their own crates.

use crate::anchoring::AnchorWorker;
use crate::commands::ledger::{attach_signer, open_store_and_ledger, verifiers};
use crate::config::Settings;
use clap::{Args, ValueEnum};
use cortex_core::memory::AgentMemory;
use cortex_core::{Error, Result};
use cortex_mcp::MessageHandler;
use cortex_mcp::metrics::Metrics;
use cortex_mcp::tools::{ledger as ledger_tools, memory as memory_tools};
use cortex_mcp::{McpServer, cache};
use std::sync::Arc;

impl TransportKind {
    /// The name `--transport` takes.
    fn name(self) -> &'static str {
        match self {
            TransportKind::Stdio => "stdio",
            TransportKind::Http => "http",
            TransportKind::Sse => "sse",
            TransportKind::Ws => "ws",
        }
    }
}

/// Which transport to serve on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportKind {
    /// Newline-delimited JSON-RPC on stdin/stdout (for clients that launch the server).
    Stdio,
    /// Streamable HTTP (JSON and SSE replies) at /mcp, plus legacy HTTP+SSE.
    Http,
    /// The legacy HTTP+SSE transport of 2024-11-05 (GET /sse, POST /messages).
    Sse,
    /// WebSocket, subprotocol `mcp`, one JSON-RPC message per text frame.
    Ws,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Transport to serve on.
    #[arg(long, value_enum, default_value = "stdio")]
    transport: TransportKind,
    /// Interface to bind (http, sse, ws); loopback by default.
    #[arg(long, env = "CORTEX_MCP_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to bind (http, sse, ws); 0 picks a free one.
    #[arg(long, env = "CORTEX_MCP_PORT", default_value_t = 9999)]
    port: u16,
}

/// Entries of the MCP query cache (0 turns it off); default [`cache::DEFAULT_CAPACITY`].
pub const CACHE_ENTRIES_ENV: &str = "CORTEX_MCP_CACHE_ENTRIES";
/// Milliseconds a search or recall computed "as of now" may be served from the cache.
pub const CACHE_NOW_TTL_ENV: &str = "CORTEX_MCP_CACHE_NOW_TTL_MS";

fn env_number(name: &str) -> Result<Option<u64>> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::config(format!("{name}={v:?} is not a non-negative integer"))),
        Err(_) => Ok(None),
    }
}

/// The MCP server with what it was built on.
pub struct Built {
    /// The server.
    pub server: McpServer,
    /// The agent memory its tools use.
    pub memory: Arc<AgentMemory>,
    /// The ledger.
    pub ledger: Arc<cortex_core::Ledger>,
    /// The anchoring thread, when anchors are configured (it runs until dropped).
    pub anchoring: Option<AnchorWorker>,
    /// The policy's anchors (kind, target).
    pub anchors: Vec<(String, String)>,
}

/// Builds the MCP server over the configured ledger, recording into `metrics` (pass the same
/// `Arc` to the transport so `/metrics` shows both layers), and starts the anchoring thread
/// when anchors are configured.
pub fn build_server(s: &Settings, metrics: Arc<Metrics>) -> Result<Built> {
    let (store, mut ledger) =
        open_store_and_ledger(s, cortex_core::ledger::DEFAULT_CHECKPOINT_EVERY)?;
    attach_signer(s, &mut ledger)?;
    let policy = s.load_policy()?;
    let trust = ledger_tools::Trust {
        verifiers: match policy {
            Some(_) => Vec::new(),
            None => verifiers(s, &[])?.into_iter().map(Arc::from).collect(),
        },
        anchors: crate::plugins::anchors::to_check(policy.as_deref(), &s.home)?,
        policy: policy.clone(),
    };
    let builder = McpServer::builder("cortex", "CORTEX", env!("CARGO_PKG_VERSION")).instructions(
        "CORTEX is an agent memory on a tamper-evident audit ledger with signed C2SP \
         checkpoints. Store facts with cortex_store, find them with cortex_search and \
         cortex_recall, vote on them with cortex_vote, retire them with cortex_deprecate and read \
         their record with cortex_history; every change is a ledger entry. Use \
         cortex_ledger_checkpoint to sign the current head, cortex_ledger_verify to check every \
         entry and signature, and cortex_ledger_proof for an entry's inclusion proof. The \
         resource cortex://ledger/checkpoint holds the latest signed checkpoint, the template \
         cortex://projects/{project}/facts a project's current facts, and the prompt \
         cortex_project_briefing briefs on a project. cortex_metrics reports this server's \
         metrics.",
    );
    let capacity = env_number(CACHE_ENTRIES_ENV)?.map_or(cache::DEFAULT_CAPACITY, |n| n as usize);
    let now_ttl = env_number(CACHE_NOW_TTL_ENV)?
        .map_or(cache::DEFAULT_NOW_TTL, std::time::Duration::from_millis);
    let anchors = crate::plugins::anchors::selected(&s.anchors, policy.as_deref(), &s.home)?;
    let builder = builder
        .metrics(metrics.clone())
        .query_cache(capacity, now_ttl)
        // The `postgres` client blocks on a runtime of its own: never on an async worker.
        .blocking_store(ledger.store().scheme() == "postgres");
    let ledger = Arc::new(ledger);
    let worker = AnchorWorker::spawn(
        ledger.clone(),
        anchors,
        Box::new(move |s| metrics.set_anchor_statuses(s)),
    )?;
    // An in-memory BM25 index answers searches (p99 in milliseconds at 100k facts, where FTS5's
    // bm25() needs ~0.75 µs per matching row); it is built off the request path, and until then
    // searches go to the store. CORTEX_SEARCH_INDEX=0 turns it off.
    // With an embedding model installed, the index also holds every fact's vector (semantic
    // and hybrid search); the model loads in the warm-up thread, not before the first answer.
    let embedder = crate::plugins::embedders::installed(&s.home);
    let use_index =
        embedder.is_some() || std::env::var("CORTEX_SEARCH_INDEX").map_or(true, |v| v != "0");
    let memory = AgentMemory::new(store, ledger.clone())?;
    let memory = match &embedder {
        Some(e) => memory.with_embedder(e.clone()),
        None if use_index => memory.with_search_index(),
        None => memory,
    };
    // Concurrent stores (many clients of one server) share durable commits.
    let memory = Arc::new(memory.with_group_commit());
    if use_index {
        let m = memory.clone();
        std::thread::spawn(move || {
            if let Some(e) = &embedder
                && let Err(e) = crate::plugins::embedders::preload(e)
            {
                eprintln!("warning: {e}");
            }
            if let Err(e) = m.warm_up() {
                eprintln!("warning: the search index could not be built: {e}");
            }
        });
    }
    let anchors = policy.as_ref().map(|p| p.anchor_ids()).unwrap_or_default();
    let builder = ledger_tools::register(builder, ledger.clone(), trust, Some(memory.clone()));
    Ok(Built {
        server: memory_tools::register(builder, memory.clone()).build(),
        memory,
        ledger,
        anchoring: worker,
        anchors,
    })
}

pub fn start(s: &Settings, a: StartArgs) -> Result<u8> {
    // One Metrics for the MCP server and the transport: /metrics and cortex_metrics show both.
    let metrics = Arc::new(Metrics::new());
    let transport = crate::plugins::transports::open(
        a.transport.name(),
        crate::plugins::transports::Network {
            host: a.host.clone(),
            port: a.port,
            metrics: metrics.clone(),
        },
    )?;
    let Built {
        server,
        anchoring: _anchoring,
        ..
    } = build_server(s, metrics.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::backend("cannot start the async runtime").with_source(e))?;
    // Logs go to stderr: on stdio, stdout carries nothing but protocol.
    eprintln!(
        "cortex MCP server on {} ({})",
        transport.name(),
        if a.transport == TransportKind::Stdio {
            "stdin/stdout".to_owned()
        } else {
            format!("{}:{}", a.host, a.port)
        }
    );
    let handler: Arc<dyn MessageHandler> = Arc::new(server);
    // The server is dropped here, after the runtime: dropping a store's blocking clients (the
    // `postgres` crate runs its own runtime to close a connection) on a runtime worker panics.
    let server = handler.clone();
    let served = runtime.block_on(async move {
        let shutdown = Box::pin(async {
            let _ = tokio::signal::ctrl_c().await;
        });
        transport.serve(handler, shutdown).await
    });
    drop(runtime);
    drop(server);
    served?;
    Ok(0)
}
