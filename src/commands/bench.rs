//! `cortex benchmark`: parses the flags, opens the stores the suites run on, and hands the work
//! to the harness crate (`cortex-bench`), which measures and prints the figures.

use crate::config::Settings;
use crate::output;
use clap::Args;
use cortex_bench::{Cleanup, Report, ledger_suite, mcp_suite};
use cortex_core::{DynStore, Error, Ledger, Result};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Which suite: ledger, mcp or all.
    #[arg(long, default_value = "ledger")]
    suite: String,
    /// Ledger size for the large verify, proof and export runs (ledger suite), or the ledger
    /// entries behind the server (mcp suite).
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Facts in the agent memory behind the server (mcp suite).
    #[arg(long, default_value_t = 100_000)]
    facts: u64,
    /// Seconds of each throughput run (mcp suite).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Entries per batch in the batched append.
    #[arg(long, default_value_t = 10_000)]
    batch: u64,
    /// Single-entry appends to time (each its own durable transaction).
    #[arg(long, default_value_t = 2_000)]
    singles: u64,
    /// Directory for the benchmark databases (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Storage backend for the ledger suite: sqlite, redb or postgres (with --db postgres://…).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// SQLite synchronous mode: full (power-loss durable) or normal (process-crash durable).
    #[arg(long, default_value = "full")]
    synchronous: String,
}

pub fn run(s: &Settings, a: BenchArgs) -> Result<u8> {
    match a.suite.as_str() {
        "ledger" => ledger(s, &a),
        "mcp" => mcp(s, &a),
        "all" => {
            ledger(s, &a)?;
            mcp(s, &a)
        }
        x => Err(Error::invalid(format!(
            "unknown suite {x:?}; available: ledger, mcp, all"
        ))),
    }
}

fn base_dir(a: &BenchArgs) -> PathBuf {
    a.dir.clone().unwrap_or_else(std::env::temp_dir)
}

fn ledger(s: &Settings, a: &BenchArgs) -> Result<u8> {
    if a.entries < 10_000 || a.batch == 0 {
        return Err(Error::invalid(
            "--entries must be at least 10000 and --batch at least 1",
        ));
    }
    let dir = base_dir(a).join(format!("cortex-bench-{}", std::process::id()));
    let stores = crate::plugins::BenchStores::new(&a.backend, &a.synchronous, &s.db, &dir)?;
    std::fs::create_dir_all(&dir)?;
    let _cleanup = Cleanup(dir.clone());
    let mut report = Report::new(s.json);
    ledger_suite::run(
        &ledger_suite::LedgerSuite {
            entries: a.entries,
            batch: a.batch,
            singles: a.singles,
            facts: a.facts,
            backend: stores.describe(),
            open: &|name| stores.open(name),
            scratch: dir.clone(),
        },
        &mut report,
    )?;
    drop(stores);
    if s.json {
        output::json(&json!({
            "suite": "ledger", "entries": a.entries, "synchronous": a.synchronous,
            "results": report.rows
        }));
    }
    Ok(0)
}

/// Opens the ledger in a benchmark server's home with the key the server will load from it.
fn open_home(home: &Path) -> Result<(DynStore, Ledger)> {
    let settings = Settings {
        db: home.join("cortex.db").display().to_string(),
        hasher: None,
        key: Settings::default_key(home),
        key_explicit: false,
        json: true,
        agent: None,
        home: home.to_path_buf(),
        policy: None,
        signers: Vec::new(),
        anchors: Vec::new(),
    };
    let (store, mut ledger) = super::ledger::open_store_and_ledger(
        &settings,
        cortex_core::ledger::DEFAULT_CHECKPOINT_EVERY,
    )?;
    // The key the server will load from its home, made there quietly.
    let (signer, _) = super::ledger::signing_key(&settings, &ledger)?;
    ledger.add_signer(Arc::new(signer))?;
    Ok((store, ledger))
}

fn mcp(s: &Settings, a: &BenchArgs) -> Result<u8> {
    let mut report = Report::new(s.json);
    mcp_suite::run(
        &mcp_suite::McpSuite {
            entries: a.entries,
            facts: a.facts,
            duration: a.duration,
            dir: base_dir(a),
            server: std::env::current_exe()?,
            open_home: &open_home,
        },
        &mut report,
    )?;
    if s.json {
        output::json(&json!({
            "suite": "mcp", "entries": a.entries, "facts": a.facts,
            "duration_s": a.duration, "protocol": cortex_bench::client::VERSION,
            "results": report.rows
        }));
    }
    Ok(0)
}
