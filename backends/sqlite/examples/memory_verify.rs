//! Measures what `cortex ledger verify` costs on SQLite now that it also checks the agent
//! memory: the ledger and memory verification of a database of N ledger entries of which F
//! store facts, and `scan_memory` alone.
//!
//! `cargo run --release -p cortex-sqlite --example memory_verify -- [DB] [ENTRIES] [FACTS] [verify [RUNS]]`
//! (defaults: a file under the system's temp directory, 1,100,000 and 100,000: the last figure
//! of `cortex benchmark --suite ledger`). The database is built on the first run as that
//! benchmark builds it (its plain entries, then facts in batches of 10,000, with a checkpoint
//! every 1,000 entries) and reused after. `verify` runs only the full verify, RUNS times
//! (default 10), for a profiler.

use cortex_bench::workload;
use cortex_core::ledger::verify::Take;
use cortex_core::memory::replay::Prepared;
use cortex_core::memory::store::MemoryRow;
use cortex_core::{AgentMemory, DynStore, Ledger, LedgerOptions, Signer};
use cortex_ed25519::Ed25519Signer;
use cortex_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use std::sync::Arc;
use std::time::Instant;

/// Keeps the memory entries the ledger scan prepares, by chunk.
struct Prepare(std::sync::Mutex<Vec<(u64, Vec<Prepared>)>>);

impl Take for Prepare {
    type Item = Prepared;
    fn take(&self, row: cortex_core::EntryRef<'_>) -> Option<Prepared> {
        Prepared::of(row)
    }
    fn chunk(&self, chunk: u64, items: Vec<Prepared>) {
        self.0.lock().expect("lock").push((chunk, items));
    }
}

/// CPU seconds this process has used (all threads): on a busy machine wall time says little.
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs `f`, printing its wall and CPU time under `what`.
fn timed<T>(
    what: &str,
    f: impl FnOnce() -> cortex_core::Result<T>,
) -> cortex_core::Result<(T, f64)> {
    let (t, c) = (Instant::now(), cpu());
    let out = f()?;
    let s = t.elapsed().as_secs_f64();
    println!("{what}: {s:.3} s wall, {:.2} s CPU", cpu() - c);
    Ok((out, s))
}

fn main() -> cortex_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("cortex-memory-verify.db"));
    let entries: u64 = args
        .next()
        .map_or(1_100_000, |a| a.parse().expect("ENTRIES"));
    let facts: u64 = args.next().map_or(100_000, |a| a.parse().expect("FACTS"));
    // `verify [RUNS]`: only the full verify, RUNS times (for a profiler).
    let verify_only = args.next().as_deref() == Some("verify");
    let runs: usize = args.next().map_or(10, |a| a.parse().expect("RUNS"));
    let fresh = !path.exists();
    let store = Arc::new(SqliteStore::open(
        &path,
        SqliteOptions {
            synchronous: Synchronous::Normal,
            ..Default::default()
        },
    )?);
    let dyn_store: DynStore = store.clone();
    let mut ledger = Ledger::open(
        dyn_store.clone(),
        LedgerOptions {
            checkpoint_every: 1_000,
            ..Default::default()
        },
    )?;
    let key = path.with_extension("skey");
    let signer = Arc::new(if fresh {
        let s = Ed25519Signer::generate("bench.example/memory-verify")?;
        std::fs::write(&key, s.to_skey()).expect("write the key");
        s
    } else {
        Ed25519Signer::from_skey(&std::fs::read_to_string(&key).expect("read the key"))?
    });
    ledger.add_signer(signer.clone())?;
    let memory = AgentMemory::new(dyn_store.clone(), Arc::new(ledger))?;
    if fresh {
        let t = Instant::now();
        let audit = entries - facts;
        let mut done = 0;
        while done < audit {
            let k = 10_000.min(audit - done);
            memory.ledger().append(&workload::entries(done, k))?;
            done += k;
        }
        println!(
            "appended {audit} entries in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let (t, c) = (Instant::now(), cpu());
        workload::store_facts(&memory, facts)?;
        let s = t.elapsed().as_secs_f64();
        println!(
            "stored {facts} facts in {s:.1} s ({:.0} facts/s), {:.2} s CPU",
            facts as f64 / s,
            cpu() - c
        );
        memory.ledger().checkpoint()?;
    }
    let size = memory.ledger().head()?.size;
    let options = cortex_core::VerifyOptions {
        verifiers: vec![signer.verifier()],
        ..Default::default()
    };
    let full_verify = |runs: usize| -> cortex_core::Result<()> {
        for run in 0..runs {
            let (r, s) = timed(&format!("ledger + memory verify #{run}"), || {
                memory.verify(&options)
            })?;
            assert!(r.valid, "{:?}", r.violations);
            println!(
                "  {size} entries, {} facts: {:.0} entries/s",
                r.memory.map_or(0, |m| m.facts),
                size as f64 / s
            );
        }
        Ok(())
    };
    if verify_only {
        return full_verify(runs);
    }

    for run in 0..3 {
        let (rows, _) = timed(&format!("scan_memory #{run}"), || {
            let mut rows = 0u64;
            dyn_store.scan_memory(&mut |r| {
                if let MemoryRow::Undecodable {
                    table,
                    key,
                    problem,
                } = r
                {
                    panic!("{table} {key}: {problem}");
                }
                rows += 1;
                Ok(())
            })?;
            Ok(rows)
        })?;
        println!("  {rows} rows");
    }
    // Search answered by the store (FTS5 finds, counts and scores; facts read whole).
    for q in ["topic7 w42", "agent"] {
        let query = cortex_core::SearchQuery::new(q);
        let mut times = Vec::new();
        let c = cpu();
        for _ in 0..50 {
            let t = Instant::now();
            let hits = memory.search(&query)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(!hits.is_empty());
        }
        times.sort_by(f64::total_cmp);
        println!(
            "search {q:?} by the store: p50 {:.2} ms wall, {:.2} ms CPU per query",
            times[times.len() / 2],
            (cpu() - c) * 1000.0 / 50.0
        );
    }
    // SQLite's own floor for that scan: every column of every row looked at, nothing decoded.
    let raw = rusqlite::Connection::open(&path).expect("open");
    for table in ["facts", "fact_openings", "fact_events", "fact_index"] {
        timed(&format!("  raw pass over {table}"), || {
            let mut stmt = raw
                .prepare(&format!("SELECT * FROM {table}"))
                .expect("prepare");
            let n = stmt.column_count();
            let mut rows = stmt.query([]).expect("query");
            let mut bytes = 0usize;
            while let Some(r) = rows.next().expect("row") {
                for i in 0..n {
                    bytes += r
                        .get_ref(i)
                        .map_or(0, |v| v.as_bytes().map_or(8, <[u8]>::len));
                }
            }
            Ok(bytes)
        })?;
    }
    // FTS5's check of its postings against fact_index (not part of verify: see the README).
    for run in 0..3 {
        timed(&format!("FTS5 integrity-check #{run}"), || {
            raw.execute_batch(
                "INSERT INTO facts_fts (facts_fts, rank) VALUES ('integrity-check', 1)",
            )
            .expect("integrity-check");
            Ok(())
        })?;
    }
    for run in 0..3 {
        let (r, s) = timed(&format!("ledger verify only #{run}"), || {
            cortex_core::verify_store(
                &*dyn_store,
                memory.ledger().hasher(),
                memory.ledger().origin(),
                &options,
            )
        })?;
        assert!(r.valid, "{:?}", r.violations);
        println!("  {size} entries: {:.0} entries/s", size as f64 / s);
    }
    // Where memory verify's time goes, step by step as core's memory::audit::verify runs them
    // (one after the other here; verify overlaps the ledger scan with the memory scan).
    let take = Prepare(std::sync::Mutex::new(Vec::new()));
    timed("  step: ledger verify preparing memory entries", || {
        cortex_core::ledger::verify::verify_ledger(
            &*dyn_store,
            memory.ledger().hasher(),
            memory.ledger().origin(),
            &options,
            &take,
        )
    })?;
    let mut chunks = take.0.into_inner().expect("lock");
    chunks.sort_by_key(|c| c.0);
    timed("  step: scan_memory into maps", || {
        let mut facts = std::collections::BTreeMap::new();
        let mut openings = std::collections::BTreeMap::new();
        let mut events = std::collections::BTreeSet::new();
        let mut texts = std::collections::BTreeMap::new();
        dyn_store.scan_memory(&mut |r| {
            match r {
                MemoryRow::Fact(f) => {
                    facts.insert(f.id, f);
                }
                MemoryRow::Opening(o) => {
                    openings.insert(o.fact_id, o);
                }
                MemoryRow::Event {
                    fact_id,
                    entry_index,
                } => {
                    events.insert((fact_id, entry_index));
                }
                MemoryRow::IndexText { fact_id, text } => {
                    texts.insert(fact_id, text);
                }
                _ => {}
            }
            Ok(())
        })?;
        Ok((facts, openings, events, texts))
    })?;
    timed("  step: replay", || {
        let mut replay = cortex_core::memory::replay::Replay::new();
        for p in chunks.into_iter().flat_map(|c| c.1) {
            replay.apply_prepared(p);
        }
        Ok(replay)
    })?;
    timed("  step: index_text of every fact", || {
        let mut n = 0;
        for i in 0..facts {
            n += cortex_core::memory::bm25::index_text(&workload::fact_text(i), &[]).len();
        }
        Ok(n)
    })?;
    full_verify(3)
}
