//! `cortex benchmark --suite ledger`: measures the ledger on this machine against the bars of
//! PRODUCT.md §7 and prints the figures (never asserts timings).

use super::bench_mcp::{fact_text, uncached_query};
use super::ledger::rate;
use crate::config::Settings;
use crate::output::{self, num};
use clap::Args;
use cortex_core::ledger::export::{ExportFormat, verify_export, write_export};
use cortex_core::{
    Error, Ledger, LedgerOptions, NewEntry, Result, Signer, Verifier, VerifyOptions, verify_store,
};
use cortex_ed25519::Ed25519Signer;
use cortex_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Which suite: ledger, mcp or all.
    #[arg(long, default_value = "ledger")]
    suite: String,
    /// Ledger size for the large verify, proof and export runs (ledger suite), or the ledger
    /// entries behind the server (mcp suite).
    #[arg(long, default_value_t = 1_000_000)]
    pub(super) entries: u64,
    /// Facts in the agent memory behind the server (mcp suite).
    #[arg(long, default_value_t = 100_000)]
    pub(super) facts: u64,
    /// Seconds of each throughput run (mcp suite).
    #[arg(long, default_value_t = 10)]
    pub(super) duration: u64,
    /// Entries per batch in the batched append.
    #[arg(long, default_value_t = 10_000)]
    batch: u64,
    /// Single-entry appends to time (each its own durable transaction).
    #[arg(long, default_value_t = 2_000)]
    singles: u64,
    /// Directory for the benchmark databases (default: the system temp dir).
    #[arg(long)]
    pub(super) dir: Option<std::path::PathBuf>,
    /// Storage backend for the ledger suite: sqlite, redb or postgres (with --db postgres://…).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// SQLite synchronous mode: full (power-loss durable) or normal (process-crash durable).
    #[arg(long, default_value = "full")]
    synchronous: String,
}

fn entries(from: u64, n: u64) -> Vec<NewEntry> {
    (from..from + n)
        .map(|i| {
            NewEntry::new(
                "bench",
                "fact.store",
                format!(
                    r#"{{"fact_id":{i},"content":"benchmark fact number {i}","confidence":0.9}}"#
                ),
            )
        })
        .collect()
}

pub(super) struct Bench {
    pub(super) rows: Vec<serde_json::Value>,
    pub(super) json: bool,
}

impl Bench {
    pub(super) fn report(
        &mut self,
        name: &str,
        value: f64,
        unit: &str,
        bar: &str,
        met: Option<bool>,
        detail: String,
    ) {
        if !self.json {
            let mark = match met {
                Some(true) => "✓",
                Some(false) => "✗",
                None => " ",
            };
            println!(
                "{mark} {name:<44} {:>14} {unit:<10} bar {bar:<14} {detail}",
                fmt_val(value)
            );
        }
        self.rows.push(json!({"name": name, "value": value, "unit": unit, "bar": bar, "met": met, "detail": detail}));
    }
}

fn fmt_val(v: f64) -> String {
    if v >= 1000.0 {
        num(v as u64)
    } else {
        format!("{v:.2}")
    }
}

/// Where the suite's ledgers live: one file (or one Postgres schema) per ledger.
pub(super) enum Backend {
    Sqlite(Synchronous),
    Redb,
    /// The server URL; each ledger gets a schema of its own, dropped at the end.
    Postgres(
        String,
        std::cell::RefCell<Vec<Arc<cortex_postgres::PostgresStore>>>,
    ),
}

impl Backend {
    fn open(&self, dir: &Path, name: &str) -> Result<cortex_core::DynStore> {
        Ok(match self {
            Backend::Sqlite(sync) => Arc::new(SqliteStore::open(
                &dir.join(format!("{name}.db")),
                SqliteOptions {
                    synchronous: *sync,
                    ..Default::default()
                },
            )?),
            Backend::Redb => Arc::new(cortex_redb::RedbStore::open(
                &dir.join(format!("{name}.redb")),
            )?),
            Backend::Postgres(url, stores) => {
                let mut c = cortex_postgres::PostgresConfig::from_url(url)?;
                c.schema = Some(format!("cortex_bench_{}_{name}", std::process::id()));
                c.pool_size = c.pool_size.max(4);
                let store = Arc::new(cortex_postgres::PostgresStore::open(c)?);
                stores.borrow_mut().push(store.clone());
                store
            }
        })
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Backend::Postgres(_, stores) = self {
            for s in stores.borrow().iter() {
                let _ = s.drop_schema();
            }
        }
    }
}

fn ledger_at(
    backend: &Backend,
    dir: &Path,
    name: &str,
    signer: &Arc<Ed25519Signer>,
    every: u64,
) -> Result<Ledger> {
    let mut l = Ledger::open(
        backend.open(dir, name)?,
        LedgerOptions {
            hasher: None,
            checkpoint_every: every,
        },
    )?;
    l.add_signer(signer.clone())?;
    Ok(l)
}

fn fill(l: &Ledger, n: u64, batch: u64) -> Result<f64> {
    let t = Instant::now();
    let mut done = 0;
    while done < n {
        let k = batch.min(n - done);
        let b = entries(done, k);
        l.append(&b)?;
        done += k;
    }
    let r = rate(n, t);
    l.checkpoint()?;
    Ok(r)
}

pub(super) fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub fn run(s: &Settings, a: BenchArgs) -> Result<u8> {
    match a.suite.as_str() {
        "ledger" => ledger_suite(s, &a),
        "mcp" => super::bench_mcp::run(s, &a),
        "all" => {
            ledger_suite(s, &a)?;
            super::bench_mcp::run(s, &a)
        }
        x => Err(Error::invalid(format!(
            "unknown suite {x:?}; available: ledger, mcp, all"
        ))),
    }
}

fn ledger_suite(s: &Settings, a: &BenchArgs) -> Result<u8> {
    if a.entries < 10_000 || a.batch == 0 {
        return Err(Error::invalid(
            "--entries must be at least 10000 and --batch at least 1",
        ));
    }
    let sync = match a.synchronous.as_str() {
        "full" => Synchronous::Full,
        "normal" => Synchronous::Normal,
        x => {
            return Err(Error::invalid(format!(
                "--synchronous {x:?}: expected full or normal"
            )));
        }
    };
    let backend = match a.backend.as_str() {
        "sqlite" => Backend::Sqlite(sync),
        "redb" => Backend::Redb,
        "postgres" if s.db.starts_with("postgres://") || s.db.starts_with("postgresql://") => {
            Backend::Postgres(s.db.clone(), Default::default())
        }
        "postgres" => {
            return Err(Error::invalid(
                "--backend postgres needs the server: --db postgres://user@host:port/dbname \
                 (each benchmark ledger gets a schema of its own, dropped at the end)",
            ));
        }
        x => {
            return Err(Error::invalid(format!(
                "--backend {x:?}: available: sqlite, redb, postgres"
            )));
        }
    };
    let base = a.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("cortex-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = Cleanup(dir.clone());
    let signer = Arc::new(Ed25519Signer::generate("bench.cortex.local/ledger")?);
    let verifier = signer.verifier();
    let mut b = Bench {
        rows: Vec::new(),
        json: s.json,
    };
    if !s.json {
        let mode = match backend {
            Backend::Sqlite(_) => format!(" (synchronous={})", a.synchronous),
            _ => String::new(),
        };
        println!(
            "CORTEX ledger benchmark: {}{mode}, SHA-256, {} cores, N = {}",
            a.backend,
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            num(a.entries)
        );
    }

    // Batched append of N entries (auto-checkpoint every 1000, as by default).
    let big = ledger_at(&backend, &dir, "big", &signer, 1000)?;
    let r = fill(&big, a.entries, a.batch)?;
    b.report(
        "append, batched (durable at commit)",
        r,
        "entries/s",
        ">= 500,000",
        Some(r >= 500_000.0),
        format!("{} per batch", num(a.batch)),
    );

    // Single appends, each a durable transaction of its own.
    let single = ledger_at(&backend, &dir, "single", &signer, 1000)?;
    let t = Instant::now();
    for i in 0..a.singles {
        single.append(&entries(i, 1))?;
    }
    let r = rate(a.singles, t);
    b.report(
        "append, single entry per transaction",
        r,
        "entries/s",
        "-",
        None,
        format!("{} sequential appends", num(a.singles)),
    );

    // 64 concurrent writers, one entry per call, each acknowledged only once committed.
    let group = Arc::new(ledger_at(&backend, &dir, "group", &signer, 1000)?);
    let gc = cortex_core::ledger::group_commit::GroupCommit::new(group);
    let per_writer = (a.singles * 10 / 64).max(50);
    let t = Instant::now();
    std::thread::scope(|sc| -> Result<()> {
        let handles: Vec<_> = (0..64u64)
            .map(|w| {
                let gc = &gc;
                sc.spawn(move || -> Result<()> {
                    for i in 0..per_writer {
                        gc.append(entries(w * per_writer + i, 1).remove(0))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| Error::backend("writer thread panicked"))??;
        }
        Ok(())
    })?;
    let r = rate(64 * per_writer, t);
    b.report(
        "append, 64 concurrent single writers",
        r,
        "entries/s",
        ">= 50,000",
        Some(r >= 50_000.0),
        format!(
            "group commit, {} entries in {} transactions, each acknowledged once durable",
            num(64 * per_writer),
            num(gc.groups())
        ),
    );

    // Full verify at 10k and at N.
    let small = ledger_at(&backend, &dir, "small", &signer, 1000)?;
    fill(&small, 10_000, a.batch)?;
    let opts = VerifyOptions {
        verifiers: vec![signer.verifier()],
        ..Default::default()
    };
    for (name, l, n) in [
        ("full verify, 10k entries", &small, 10_000u64),
        ("full verify, N entries", &big, a.entries),
    ] {
        let rep = verify_store(&**l.store(), l.hasher(), l.origin(), &opts)?;
        if !rep.valid {
            return Err(Error::integrity(format!(
                "benchmark ledger failed to verify: {:?}",
                rep.violations.first()
            )));
        }
        let r = n as f64 / (rep.elapsed_ms / 1000.0);
        let (bar, met) = if n == 10_000 {
            ("< 100 ms", Some(rep.elapsed_ms < 100.0))
        } else {
            (">= 2,000,000/s", Some(r >= 2_000_000.0))
        };
        b.report(
            name,
            r,
            "entries/s",
            bar,
            met,
            format!(
                "{:.1} ms, {} checkpoints",
                rep.elapsed_ms, rep.checkpoints_checked
            ),
        );
    }

    // Proofs at N: random indices and old sizes, library calls against the stored tiles.
    let size = big.head()?.size;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut inc = Vec::new();
    for _ in 0..2000 {
        let i = next() % size;
        let t = Instant::now();
        let p = big.inclusion_proof(i, size)?;
        inc.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(p);
    }
    let mut con = Vec::new();
    for _ in 0..2000 {
        let m = 1 + next() % (size - 1);
        let t = Instant::now();
        let p = big.consistency_proof(m, size)?;
        con.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(p);
    }
    let (i50, i99) = (percentile(&mut inc, 0.5), percentile(&mut inc, 0.99));
    let (c50, c99) = (percentile(&mut con, 0.5), percentile(&mut con, 0.99));
    b.report(
        "inclusion proof at N (p50)",
        i50,
        "µs",
        "< 100 µs",
        Some(i50 < 100.0),
        format!("p99 {i99:.1} µs"),
    );
    b.report(
        "consistency proof at N (p50)",
        c50,
        "µs",
        "< 100 µs",
        Some(c50 < 100.0),
        format!("p99 {c99:.1} µs"),
    );

    // Export of N entries and its offline verification.
    let path = dir.join("export.jsonl");
    let t = Instant::now();
    {
        let f = std::fs::File::create(&path)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        write_export(&big, ExportFormat::Jsonl, None, None, &mut w, &|_| {})?;
    }
    let r = rate(a.entries, t);
    b.report(
        "export, N entries (jsonl)",
        r,
        "entries/s",
        "-",
        None,
        format!("{:.0} ms", t.elapsed().as_secs_f64() * 1e3),
    );
    // The JSON form is read into memory whole; past 2M entries only the streamed JSONL is timed.
    let mut forms = vec![(ExportFormat::Jsonl, path.clone())];
    if a.entries <= 2_000_000 {
        forms.push((ExportFormat::Json, dir.join("export.json")));
    }
    for (fmt, p) in forms {
        if fmt == ExportFormat::Json {
            let f = std::fs::File::create(&p)?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            write_export(&big, fmt, None, None, &mut w, &|_| {})?;
        }
        let keys: [&dyn Verifier; 1] = [&*verifier];
        let t = Instant::now();
        let f = std::fs::File::open(&p)?;
        let rep = verify_export(
            &mut std::io::BufReader::with_capacity(1 << 20, f),
            &keys,
            &|_| {},
        )?;
        if !rep.valid {
            return Err(Error::integrity("benchmark export failed to verify"));
        }
        let r = rate(rep.entries_checked, t);
        b.report(
            &format!("verify-external, N entries ({})", fmt.name()),
            r,
            "entries/s",
            "-",
            None,
            format!("{:.0} ms", t.elapsed().as_secs_f64() * 1e3),
        );
    }
    // Agent memory on this backend: facts stored in batches, then searches answered by the
    // store itself (SQLite FTS5, Postgres full-text, redb's own index; no in-memory index).
    let store = backend.open(&dir, "memory")?;
    let mut ledger = Ledger::open(
        store.clone(),
        LedgerOptions {
            hasher: None,
            checkpoint_every: 1000,
        },
    )?;
    ledger.add_signer(signer.clone())?;
    let memory = cortex_core::AgentMemory::new(store, Arc::new(ledger))?;
    let t = Instant::now();
    let mut done = 0;
    while done < a.facts {
        let k = 10_000.min(a.facts - done);
        let batch: Vec<cortex_core::NewFact> = (done..done + k)
            .map(|i| cortex_core::NewFact::new(format!("project{}", i % 10), fact_text(i)))
            .collect();
        memory.store_facts(&batch)?;
        done += k;
    }
    let r = rate(a.facts, t);
    b.report(
        "store facts, batches of 10k",
        r,
        "facts/s",
        "-",
        None,
        format!("{} facts", num(a.facts)),
    );
    let mut lat = Vec::new();
    let mut found = 0;
    for n in 0..500u64 {
        let q = cortex_core::SearchQuery::new(uncached_query(n));
        let t = Instant::now();
        found += memory.search(&q)?.len();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    if found == 0 {
        return Err(Error::integrity("benchmark searches found nothing"));
    }
    let (s50, s99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));
    b.report(
        "search (store), top 10 (p50)",
        s50,
        "ms",
        "-",
        None,
        format!(
            "p99 {s99:.2} ms, 500 distinct 2-word queries, {} facts",
            num(a.facts)
        ),
    );
    if s.json {
        output::json(
            &json!({"suite": "ledger", "entries": a.entries, "synchronous": a.synchronous, "results": b.rows}),
        );
    }
    Ok(0)
}

pub(super) struct Cleanup(pub(super) std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
