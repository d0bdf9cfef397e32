//! Criterion benchmarks of the assembled ledger (SQLite store, SHA-256, Ed25519).
//!
//! `cargo bench --bench ledger` measures at 1M entries; under `cargo test` (no `--bench` flag) the
//! same code runs once at a small size, so the benchmark stays compiled and exercised.
//! The product bars are checked by `cortex benchmark --suite ledger`; this file gives the
//! statistically careful per-operation numbers.

use cortex_bench::workload::entries;
use cortex_core::{Hasher, Ledger, LedgerOptions, Signer, VerifyOptions, verify_store};
use cortex_ed25519::Ed25519Signer;
use cortex_sqlite::{SqliteOptions, SqliteStore};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;

fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

struct Fixture {
    _dir: tempfile::TempDir,
    ledger: Ledger,
    signer: Arc<Ed25519Signer>,
    size: u64,
}

fn fixture(size: u64) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("b.db"), SqliteOptions::default()).expect("open"),
    );
    let mut ledger = Ledger::open(
        store,
        LedgerOptions {
            hasher: None,
            checkpoint_every: 100_000,
        },
    )
    .expect("ledger");
    let signer = Arc::new(Ed25519Signer::generate("bench.example/ledger").expect("key"));
    ledger.add_signer(signer.clone()).expect("signer");
    let mut done = 0;
    while done < size {
        let n = 50_000.min(size - done);
        ledger.append(&entries(done, n)).expect("append");
        done += n;
    }
    ledger.checkpoint().expect("checkpoint");
    Fixture {
        _dir: dir,
        ledger,
        signer,
        size,
    }
}

fn benches(c: &mut Criterion) {
    let size = if full_run() { 1_000_000 } else { 5_000 };
    let f = fixture(size);

    let mut g = c.benchmark_group("hash");
    let e = cortex_core::EntryRef {
        index: 7,
        timestamp: "2026-11-24T00:00:00.000000Z",
        project: "bench",
        action: "fact.store",
        detail: r#"{"fact_id":7,"content":"benchmark fact number 7"}"#,
    };
    for h in [
        &cortex_core::Sha256Hasher as &dyn Hasher,
        &cortex_core::Blake3Hasher,
    ] {
        let mut buf = Vec::new();
        g.bench_function(format!("leaf/{}", h.algorithm().name()), |b| {
            b.iter(|| black_box(e.leaf_hash(h, &mut buf)))
        });
        let (l, r) = (cortex_core::Hash([1; 32]), cortex_core::Hash([2; 32]));
        g.bench_function(format!("node/{}", h.algorithm().name()), |b| {
            b.iter(|| black_box(h.node(&l, &r)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group(format!("proof_at_{}", f.size));
    let mut i = 0u64;
    g.bench_function("inclusion", |b| {
        b.iter(|| {
            i = (i + 7919) % f.size;
            black_box(f.ledger.inclusion_proof(i, f.size).expect("proof"))
        })
    });
    let mut m = 1u64;
    g.bench_function("consistency", |b| {
        b.iter(|| {
            m = 1 + (m + 104_729) % (f.size - 1);
            black_box(f.ledger.consistency_proof(m, f.size).expect("proof"))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("ledger");
    g.sample_size(10);
    g.bench_function("append_batch_10k", |b| {
        let mut next = f.size;
        b.iter_batched(
            || {
                let e = entries(next, 10_000);
                next += 10_000;
                e
            },
            |batch| black_box(f.ledger.append(&batch).expect("append")),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("append_single", |b| {
        b.iter(|| black_box(f.ledger.append(&entries(0, 1)).expect("append")))
    });
    let opts = VerifyOptions {
        verifiers: vec![f.signer.verifier()],
        ..Default::default()
    };
    g.bench_function("verify_full", |b| {
        b.iter(|| {
            let r = verify_store(
                &**f.ledger.store(),
                f.ledger.hasher(),
                f.ledger.origin(),
                &opts,
            )
            .expect("verify");
            assert!(r.valid);
            black_box(r)
        })
    });
    g.finish();
}

criterion_group!(ledger, benches);
criterion_main!(ledger);
