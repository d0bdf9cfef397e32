//! `cortex benchmark --suite ledger`: measures the ledger and the agent memory on one storage
//! backend against the bars of PRODUCT.md §7 and prints the figures (never asserts timings).

use crate::workload::{entries, store_facts, uncached_query};
use crate::{Report, cores, num, percentile, rate};
use cortex_core::ledger::export::{ExportFormat, verify_export, write_export};
use cortex_core::{
    AgentMemory, DynStore, Error, Ledger, LedgerOptions, Result, SearchQuery, Signer, Verifier,
    VerifyOptions, VerifyReport, verify_store,
};
use cortex_ed25519::Ed25519Signer;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Opens (creating) the store of one of the suite's ledgers, by name (`big`, `single`, …).
/// The caller decides where stores live and removes them afterwards.
pub type OpenStore<'a> = &'a dyn Fn(&str) -> Result<DynStore>;

/// What the ledger suite runs on.
pub struct LedgerSuite<'a> {
    /// Ledger size for the large verify, proof and export runs (at least 10,000).
    pub entries: u64,
    /// Entries per batch in the batched append (at least 1).
    pub batch: u64,
    /// Single-entry appends to time (each its own durable transaction).
    pub singles: u64,
    /// Facts stored and searched in the agent memory.
    pub facts: u64,
    /// The backend's description for the header line (`sqlite (synchronous=full)`).
    pub backend: String,
    /// Opens each ledger's store.
    pub open: OpenStore<'a>,
    /// A scratch directory for the exports (the caller removes it).
    pub scratch: PathBuf,
}

fn ledger_at(
    open: OpenStore<'_>,
    name: &str,
    signer: &Arc<Ed25519Signer>,
    every: u64,
) -> Result<Ledger> {
    let mut l = Ledger::open(
        open(name)?,
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

/// Runs a verification three times and returns the report of the median run, with the three
/// times as the report's note says them ("median of 412.0, 398.2, 455.1 ms"); an error if a run
/// finds the `what` benchmark store invalid. One run of half a second moves by a fifth with
/// what else the machine is doing; the median of three says what a run takes.
fn median_of_runs(
    what: &str,
    run: impl Fn() -> Result<VerifyReport>,
) -> Result<(VerifyReport, String)> {
    let mut reps = Vec::new();
    for _ in 0..3 {
        let rep = run()?;
        if !rep.valid {
            return Err(Error::integrity(format!(
                "benchmark {what} failed to verify: {:?}",
                rep.violations.first()
            )));
        }
        reps.push(rep);
    }
    let times: Vec<String> = reps
        .iter()
        .map(|r| format!("{:.1}", r.elapsed_ms))
        .collect();
    reps.sort_by(|a, b| a.elapsed_ms.total_cmp(&b.elapsed_ms));
    Ok((
        reps.swap_remove(1),
        format!("median of {} ms", times.join(", ")),
    ))
}

/// Runs the suite, recording every figure in `b`.
pub fn run(a: &LedgerSuite<'_>, b: &mut Report) -> Result<()> {
    if a.entries < 10_000 || a.batch == 0 {
        return Err(Error::invalid(
            "--entries must be at least 10000 and --batch at least 1",
        ));
    }
    let signer = Arc::new(Ed25519Signer::generate("bench.cortex.local/ledger")?);
    let verifier = signer.verifier();
    b.note(&format!(
        "CORTEX ledger benchmark: {}, SHA-256, {} cores, N = {}",
        a.backend,
        cores(),
        num(a.entries)
    ));

    // Batched append of N entries (auto-checkpoint every 1000, as by default).
    let big = ledger_at(a.open, "big", &signer, 1000)?;
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
    let single = ledger_at(a.open, "single", &signer, 1000)?;
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
    let group = Arc::new(ledger_at(a.open, "group", &signer, 1000)?);
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
    let small = ledger_at(a.open, "small", &signer, 1000)?;
    fill(&small, 10_000, a.batch)?;
    let opts = VerifyOptions {
        verifiers: vec![signer.verifier()],
        ..Default::default()
    };
    for (name, l, n) in [
        ("full verify, 10k entries", &small, 10_000u64),
        ("full verify, N entries", &big, a.entries),
    ] {
        let (rep, runs) = median_of_runs("ledger", || {
            verify_store(&**l.store(), l.hasher(), l.origin(), &opts)
        })?;
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
            format!("{runs}, {} checkpoints", rep.checkpoints_checked),
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
    let path = a.scratch.join("export.jsonl");
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
        forms.push((ExportFormat::Json, a.scratch.join("export.json")));
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
    let store = (a.open)("memory")?;
    let mut ledger = Ledger::open(
        store.clone(),
        LedgerOptions {
            hasher: None,
            checkpoint_every: 1000,
        },
    )?;
    ledger.add_signer(signer.clone())?;
    // N plain entries first, so the full verify below covers N entries plus the facts.
    fill(&ledger, a.entries, a.batch)?;
    let memory = AgentMemory::new(store, Arc::new(ledger))?;
    let t = Instant::now();
    store_facts(&memory, a.facts)?;
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
        let q = SearchQuery::new(uncached_query(n));
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
    // Full verify of the ledger and the memory: every row, chain, tile and checkpoint, plus
    // the replay of the memory entries compared with every memory row and commitment.
    let (rep, runs) = median_of_runs("memory", || memory.verify(&opts))?;
    let total = rep.entries_checked;
    let r = total as f64 / (rep.elapsed_ms / 1000.0);
    b.report(
        "full verify, N entries + facts (ledger and memory)",
        r,
        "entries/s",
        ">= 2,000,000/s",
        Some(r >= 2_000_000.0),
        format!(
            "{runs}, {} entries of which {} facts replayed and compared",
            num(total),
            num(rep.memory.map_or(0, |m| m.facts))
        ),
    );
    Ok(())
}
