//! Criterion micro-benchmarks of the MCP dispatch, in process (no transport): a cached (repeated)
//! `cortex_search` `tools/call` and a `tools/list`, both in the 2026-07-28 envelope, through
//! `MessageHandler::handle` of a server over a SQLite ledger with agent-memory facts.
//!
//! `cargo bench --bench mcp` seeds 100k facts; under `cargo test` (no `--bench` flag) the same
//! code runs once at a small size, so the benchmark stays compiled and exercised. The product
//! bars are checked end to end (with transports) by `cortex benchmark --suite mcp`.

use cortex_bench::workload::{WARM_QUERY, store_facts};
use cortex_core::{AgentMemory, LedgerOptions};
use cortex_mcp::McpServer;
use cortex_mcp::MessageHandler;
use cortex_mcp::tools::memory as memory_tools;
use cortex_mcp::transport::{Incoming, Outbound};
use cortex_sqlite::{SqliteOptions, SqliteStore};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::Arc;

fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Replies come back from `handle`; nothing is sent out of band.
struct Discard;

impl Outbound for Discard {
    fn send(&self, _message: String) -> cortex_core::Result<()> {
        Ok(())
    }
}

fn request(method: &str, mut params: Value) -> String {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
}

fn fixture(facts: u64) -> (tempfile::TempDir, McpServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("m.db"), SqliteOptions::default()).expect("open"),
    );
    let options = LedgerOptions {
        hasher: None,
        checkpoint_every: 100_000,
    };
    let memory = Arc::new(AgentMemory::open(store, options).expect("memory"));
    store_facts(&memory, facts).expect("store");
    let server =
        memory_tools::register(McpServer::builder("cortex", "CORTEX", "bench"), memory).build();
    (dir, server)
}

fn benches(c: &mut Criterion) {
    let facts = if full_run() { 100_000 } else { 2_000 };
    let (_dir, server) = fixture(facts);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let out: Arc<dyn Outbound> = Arc::new(Discard);
    let call = |message: &str| {
        let incoming = Incoming {
            message: message.to_owned(),
            ..Default::default()
        };
        rt.block_on(server.handle(incoming, out.clone()))
            .expect("a reply")
    };
    let search = request(
        "tools/call",
        json!({"name": "cortex_search", "arguments": {"query": WARM_QUERY}}),
    );
    let list = request("tools/list", json!({}));
    for m in [&search, &list] {
        let reply = call(m);
        assert!(
            reply.contains("\"result\"") && !reply.contains("\"isError\":true"),
            "{reply}"
        );
    }

    let mut g = c.benchmark_group(format!("mcp_handle_{facts}_facts"));
    g.bench_function("tools_call_search_cached", |b| {
        b.iter(|| black_box(call(&search)))
    });
    g.bench_function("tools_list", |b| b.iter(|| black_box(call(&list))));
    g.finish();
}

criterion_group!(mcp, benches);
criterion_main!(mcp);
