//! `cortex benchmark`: parses the flags, opens the stores the suites run on, and hands the work
//! to the harness crate (`cortex-bench`), which measures and prints the figures.

use crate::config::Settings;
use crate::output;
use clap::Args;
use cortex_bench::anchors_suite::{self, BenchAnchor, SignerSet};
use cortex_bench::{Cleanup, Report, ledger_suite, mcp_suite};
use cortex_core::ledger::policy::PolicyAnchor;
use cortex_core::{DynStore, Error, Ledger, Result, Signer};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Which suite: ledger, mcp, anchors (signers and anchors), rest (cortex serve under wrk),
    /// search (semantic and hybrid search; needs `cortex models install`), search-quality
    /// (retrieval quality on a public benchmark; needs --data) or all (the first four).
    #[arg(long, default_value = "ledger")]
    suite: String,
    /// Ledger size for the large verify, proof and export runs (ledger suite), or the ledger
    /// entries behind the server (mcp suite).
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Facts in the agent memory behind the server (mcp and rest suites).
    #[arg(long, default_value_t = 100_000)]
    facts: u64,
    /// Seconds of each throughput run (mcp and rest suites).
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
    /// Checkpoints timed per signer set and per anchor (anchors suite).
    #[arg(long, default_value_t = 200)]
    rounds: u64,
    /// Entries appended before each checkpoint (anchors suite).
    #[arg(long, default_value_t = 10)]
    appends: u64,
    /// Facts embedded for real (search suite); the others reuse their vectors.
    #[arg(long, default_value_t = 5_000)]
    distinct: u64,
    /// The benchmark data (search-quality suite): a directory with corpus.jsonl, queries.jsonl
    /// and qrels.tsv, as benches/search-quality/manpages.py makes it.
    #[arg(long)]
    data: Option<PathBuf>,
}

pub fn run(s: &Settings, a: BenchArgs) -> Result<u8> {
    match a.suite.as_str() {
        "ledger" => ledger(s, &a),
        "mcp" => mcp(s, &a),
        "anchors" => anchors(s, &a),
        "rest" => rest(s, &a),
        "search" => search(s, &a),
        "search-quality" => search_quality(s, &a),
        "all" => {
            ledger(s, &a)?;
            mcp(s, &a)?;
            anchors(s, &a)?;
            rest(s, &a)
        }
        x => Err(Error::invalid(format!(
            "unknown suite {x:?}; available: ledger, mcp, anchors, rest, search, search-quality, all"
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

fn rest(s: &Settings, a: &BenchArgs) -> Result<u8> {
    let mut report = Report::new(s.json);
    cortex_bench::rest_suite::run(
        &cortex_bench::rest_suite::RestSuite {
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
            "suite": "rest", "facts": a.facts, "duration_s": a.duration, "results": report.rows
        }));
    }
    Ok(0)
}

/// The installed embedding model, or an error saying how to install one.
fn model(s: &Settings) -> Result<(PathBuf, Arc<dyn cortex_core::Embedder>)> {
    let dir = crate::plugins::embedders::model_dir(&s.home);
    let e = crate::plugins::embedders::installed(&s.home).ok_or_else(|| {
        Error::config(format!(
            "this suite needs the embedding model and none is installed in {}: run `cortex \
             models install` first (and do not set CORTEX_EMBEDDER=none)",
            dir.display()
        ))
    })?;
    Ok((dir, e))
}

fn search(s: &Settings, a: &BenchArgs) -> Result<u8> {
    let (model_dir, embedder) = model(s)?;
    let mut report = Report::new(s.json);
    cortex_bench::search_suite::run(
        &cortex_bench::search_suite::SearchSuite {
            entries: a.entries,
            facts: a.facts,
            distinct: a.distinct,
            dir: base_dir(a),
            server: std::env::current_exe()?,
            open_home: &open_home,
            model_dir,
            embedder,
        },
        &mut report,
    )?;
    if s.json {
        output::json(&json!({
            "suite": "search", "entries": a.entries, "facts": a.facts,
            "distinct": a.distinct, "results": report.rows
        }));
    }
    Ok(0)
}

/// `--suite search-quality`: recall and NDCG of each search mode on the data in `--data`, stored
/// in a fresh SQLite ledger under the scratch directory.
fn search_quality(s: &Settings, a: &BenchArgs) -> Result<u8> {
    let data = a.data.clone().ok_or_else(|| {
        Error::invalid(
            "--suite search-quality needs --data DIR: make it with `python3 \
             benches/search-quality/manpages.py DIR` (Debian's man pages; see \
             benches/search-quality/README.md)",
        )
    })?;
    let embedder = crate::plugins::embedders::installed(&s.home);
    let dir = base_dir(a).join(format!("cortex-bench-quality-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = Cleanup(dir.clone());
    let runs = std::sync::atomic::AtomicU64::new(0);
    let open = || -> Result<DynStore> {
        let n = runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        crate::plugins::open_store(&dir.join(format!("quality-{n}.db")).display().to_string())
    };
    let mut report = Report::new(s.json);
    cortex_bench::quality_suite::run(
        &cortex_bench::quality_suite::QualitySuite {
            data: data.clone(),
            open: &open,
            embedder,
        },
        &mut report,
    )?;
    if s.json {
        output::json(&json!({
            "suite": "search-quality", "data": data, "results": report.rows
        }));
    }
    Ok(0)
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

/// `--suite anchors`: the signer sets and anchors compiled into this binary, each anchor's
/// service on loopback (this binary's witness server; an `openssl ts -reply` authority and a
/// Rekor stand-in from the harness), opened the way a policy's `anchor` line opens them.
fn anchors(s: &Settings, a: &BenchArgs) -> Result<u8> {
    let dir = base_dir(a).join(format!("cortex-bench-anchors-{}", std::process::id()));
    let stores = crate::plugins::BenchStores::new(&a.backend, &a.synchronous, &s.db, &dir)?;
    std::fs::create_dir_all(&dir)?;
    let _cleanup = Cleanup(dir.clone());
    // The witness server's runtime; the harness drives the clients on its own.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::backend("cannot start the async runtime").with_source(e))?;
    let open_anchors = |logs: &[String]| bench_anchors(&runtime, &dir, logs);
    let mut report = Report::new(s.json);
    anchors_suite::run(
        &anchors_suite::AnchorsSuite {
            rounds: a.rounds,
            appends: a.appends,
            backend: stores.describe(),
            open: &|name| stores.open(name),
            signer_sets: signer_sets(&dir)?,
            anchors: &open_anchors,
        },
        &mut report,
    )?;
    drop(stores);
    if s.json {
        output::json(&json!({
            "suite": "anchors", "rounds": a.rounds, "appends": a.appends,
            "results": report.rows
        }));
    }
    Ok(0)
}

/// The signers beside the Ed25519 note key: SSH (an Ed25519 key), Sigstore (a P-256 key
/// bundle), both.
#[allow(unused_mut)] // a build without the ssh and sigstore features measures the note key only
fn signer_sets(dir: &Path) -> Result<Vec<SignerSet>> {
    let mut sets = Vec::new();
    let mut both: Vec<Arc<dyn Signer>> = Vec::new();
    #[cfg(feature = "ssh")]
    {
        let ssh: Arc<dyn Signer> = Arc::new(cortex_ssh::SshSigner::generate(
            &dir.join("id_ed25519"),
            cortex_ssh::SshKeyType::Ed25519,
            "cortex benchmark",
            false,
        )?);
        sets.push(SignerSet {
            name: "note + ssh".into(),
            extra: vec![ssh.clone()],
        });
        both.push(ssh);
    }
    #[cfg(feature = "sigstore")]
    {
        let sigstore: Arc<dyn Signer> = Arc::new(cortex_sigstore::SigstoreSigner::random(
            cortex_sigstore::KeyAlgorithm::EcdsaP256Sha256,
        )?);
        sets.push(SignerSet {
            name: "note + sigstore".into(),
            extra: vec![sigstore.clone()],
        });
        both.push(sigstore);
    }
    if both.len() > 1 {
        sets.push(SignerSet {
            name: "note + ssh + sigstore".into(),
            extra: both,
        });
    }
    let _ = dir;
    Ok(sets)
}

/// Opens an anchor as the policy line `anchor KIND URL TRUST` would.
fn policy_anchor(
    kind: &str,
    url: &str,
    trust: &str,
    home: &Path,
) -> Result<Arc<dyn cortex_core::Anchor>> {
    let line = PolicyAnchor {
        kind: kind.to_owned(),
        target: url.to_owned(),
        trust: trust.to_owned(),
        trust_path: None,
        line: 0,
    };
    crate::plugins::anchors::open(&line, home, crate::plugins::anchors::Purpose::Submit)
}

/// The anchors compiled in, each with its service started on loopback.
fn bench_anchors(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    logs: &[String],
) -> Result<Vec<BenchAnchor>> {
    let mut out = Vec::new();
    let (url, vkey) = start_witness(runtime, dir, logs)?;
    out.push(BenchAnchor {
        name: "witness".into(),
        anchor: policy_anchor("witness", &url, &vkey, dir)?,
        peer: None,
        service: "this binary's witness server, in process (SQLite state)".into(),
    });
    #[cfg(feature = "rfc3161")]
    {
        let tsa = cortex_bench::peers::Tsa::create(&dir.join("tsa"))?;
        let ca = tsa.ca_pem()?;
        let peer = tsa.serve()?;
        out.push(BenchAnchor {
            name: "rfc3161".into(),
            anchor: policy_anchor("rfc3161", &peer.url, &ca, dir)?,
            peer: Some(peer),
            service: "local TSA, one `openssl ts -reply` process per request (P-256)".into(),
        });
    }
    #[cfg(feature = "rekor")]
    {
        let log = cortex_bench::peers::RekorStandIn::new("rekor.bench.local")?;
        let vkey = log.vkey();
        let peer = log.serve()?;
        out.push(BenchAnchor {
            name: "rekor".into(),
            anchor: policy_anchor("rekor", &peer.url, &vkey, dir)?,
            peer: Some(peer),
            service: "Rekor v2 stand-in (growing RFC 6962 tree, signed checkpoint)".into(),
        });
    }
    Ok(out)
}

/// A witness server for `logs` on 127.0.0.1, running on `runtime`: its URL and verifier key.
fn start_witness(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    logs: &[String],
) -> Result<(String, String)> {
    use cortex_witness::{KnownLogs, WitnessServer, WitnessSigner, WitnessState};
    let signer = WitnessSigner::generate("bench.cortex.local/witness")?;
    let vkey = signer.to_vkey();
    let logs = KnownLogs::parse(&logs.join("\n"))?;
    let state = WitnessState::open(&dir.join("witness.db"))?;
    let server = Arc::new(WitnessServer::new(signer, logs, state));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| Error::backend("cannot listen on 127.0.0.1").with_source(e))?;
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| Error::backend("no local address").with_source(e))?
    );
    runtime.spawn(cortex_witness::server::serve(
        server,
        listener,
        std::future::pending(),
    ));
    Ok((url, vkey))
}
