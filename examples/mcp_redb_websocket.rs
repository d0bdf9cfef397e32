//! An MCP server composed from crates, without the `cortex` binary: redb storage
//! (`cortex-redb`), BLAKE3 leaves, an Ed25519 checkpoint key (`cortex-ed25519`), the agent memory
//! and the ledger (`cortex-core`), the MCP tools and dispatch (`cortex-mcp`) and the WebSocket
//! transport (`cortex-websocket`). Any MCP client that speaks WebSocket (subprotocol `mcp`) can
//! store, search, vote on and prove facts; every change is a signed ledger entry.
//!
//! ```sh
//! cargo run --example mcp_redb_websocket -- /tmp/agent-memory 9999   # serves until Ctrl-C
//! ```
//!
//! It prints `listening on ws://ADDRESS/mcp` once it accepts connections (port 0 picks one).

use cortex_core::{
    AgentMemory, DynStore, HashAlgorithm, Ledger, LedgerOptions, Result, Signer, Verifier,
};
use cortex_ed25519::Ed25519Signer;
use cortex_http::HttpConfig;
use cortex_mcp::tools::{ledger as ledger_tools, memory as memory_tools};
use cortex_mcp::{McpServer, Metrics, Transport};
use cortex_redb::RedbStore;
use cortex_websocket::WebSocketTransport;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The checkpoint key kept beside the data: made on first start, loaded afterwards. Its name is
/// the ledger's origin, which ends in `/blake3` for a BLAKE3 ledger.
fn checkpoint_key(dir: &Path) -> Result<Ed25519Signer> {
    let path = dir.join("checkpoint.skey");
    if path.exists() {
        return Ed25519Signer::read_file(&path);
    }
    let key = Ed25519Signer::generate("example.com/agent-memory/blake3")?;
    key.write_files(&path, false)?;
    Ok(key)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "agent-memory".to_owned()));
    let port: u16 = match args.next() {
        Some(p) => p
            .parse()
            .map_err(|_| cortex_core::Error::invalid(format!("port {p:?} is not a number")))?,
        None => 9999,
    };
    std::fs::create_dir_all(&dir)?;

    // 1. Storage and ledger: one redb file holds the ledger and the memory built on it.
    let store: DynStore = Arc::new(RedbStore::open(&dir.join("memory.redb"))?);
    let mut ledger = Ledger::open(
        store.clone(),
        LedgerOptions {
            hasher: Some(HashAlgorithm::Blake3),
            checkpoint_every: 100,
        },
    )?;
    let key = checkpoint_key(&dir)?;
    let verifier: Arc<dyn Verifier> = Arc::from(key.verifier());
    ledger.add_signer(Arc::new(key))?;
    let ledger = Arc::new(ledger);

    // 2. The agent memory over that ledger, with the in-process search index.
    let memory = Arc::new(AgentMemory::new(store, ledger.clone())?.with_search_index());
    memory.warm_up()?;

    // 3. The MCP server: the ledger tools (checkpoint, verify, proof) and the memory tools
    //    (store, search, recall, vote, deprecate, history), with metrics and the query cache.
    let metrics = Arc::new(Metrics::new());
    let builder = McpServer::builder("agent-memory", "Agent memory", env!("CARGO_PKG_VERSION"))
        .instructions("An agent memory on a signed ledger: store facts, search them, vote.")
        .metrics(metrics.clone());
    let builder = ledger_tools::register(
        builder,
        ledger,
        ledger_tools::Trust::keys(vec![verifier]),
        Some(memory.clone()),
    );
    let server = Arc::new(memory_tools::register(builder, memory).build());

    // 4. The WebSocket transport: bind first (to print the address), then serve until Ctrl-C.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let transport = WebSocketTransport::bind(HttpConfig {
            host: "127.0.0.1".to_owned(),
            port,
            metrics,
            ..HttpConfig::default()
        })
        .await?;
        let addr = transport.local_addr().expect("bound");
        println!("listening on ws://{addr}/mcp");
        let shutdown = Box::pin(async {
            let _ = tokio::signal::ctrl_c().await;
        });
        Box::new(transport).serve(server, shutdown).await
    })
}
