//! Many writer processes on one SQLite file, and `kill -9` of a writer under load.
//!
//! The test binary re-executes itself as the writer processes (`--exact <child test>` with an
//! environment variable naming the database); the child tests return at once when it is unset.
//!
//! `SIGKILL` ends the writer process but not the machine (the page cache survives), so the kill
//! test shows durability against a process crash, not against power loss.

use cortex_core::testkit::crash::{
    KillTest, Load, SKEY_VAR, kill_9_rounds, run_writer, writer_ledger,
};
use cortex_core::{DynStore, Ledger, LedgerOptions, NewEntry, Signer, VerifyOptions, verify_store};
use cortex_ed25519::Ed25519Signer;
use cortex_sqlite::{SqliteOptions, SqliteStore};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const PROCESSES: u64 = 4;
const APPENDS: u64 = 1000;

/// `<database path>` for `writer_process`, with the process number in `WRITER_NO_VAR`.
const WRITER_VAR: &str = "CORTEX_TEST_SQLITE_WRITER_PATH";
const WRITER_NO_VAR: &str = "CORTEX_TEST_SQLITE_WRITER_NO";

fn open(path: &Path) -> DynStore {
    Arc::new(SqliteStore::open(path, SqliteOptions::default()).unwrap())
}

fn child(test: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    c
}

/// Eight connections open one fresh file at once (and fix its hasher), twenty times: none is
/// refused. Making a new database WAL takes an exclusive lock, and SQLite can answer BUSY to a
/// racer at once instead of waiting for it, so the store retries that step itself.
#[test]
fn openers_of_a_fresh_file_all_succeed() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh.db");
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    barrier.wait();
                    let store = SqliteStore::open(&path, SqliteOptions::default())
                        .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
                    Ledger::open(Arc::new(store), LedgerOptions::default()).unwrap();
                });
            }
        });
    }
}

/// The body of each writer process of `processes_append_to_one_chain` (does nothing otherwise):
/// 1,000 single-entry appends, each its own durable transaction.
#[test]
fn writer_process() {
    let Ok(path) = std::env::var(WRITER_VAR) else {
        return;
    };
    let p: u64 = std::env::var(WRITER_NO_VAR).unwrap().parse().unwrap();
    let ledger = Ledger::open(open(Path::new(&path)), LedgerOptions::default()).unwrap();
    for i in 0..APPENDS {
        let e = NewEntry::new("mp", "test.process", format!("{{\"p\":{p},\"i\":{i}}}"));
        let o = ledger.append(&[e]).unwrap();
        assert_eq!(o.count, 1);
    }
}

/// Four processes append 1,000 single entries each to one SQLite file at the same time: one
/// dense chain that verifies, holding every process's entries exactly once, in its order.
#[test]
fn processes_append_to_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mp.db");
    // Create the database and the ledger settings once, so the writers agree on them.
    drop(Ledger::open(open(&path), LedgerOptions::default()).unwrap());
    let children: Vec<_> = (0..PROCESSES)
        .map(|p| {
            child("writer_process")
                .env(WRITER_VAR, &path)
                .env(WRITER_NO_VAR, p.to_string())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a writer process failed");
    }

    let store = open(&path);
    let want = PROCESSES * APPENDS;
    assert_eq!(store.head().unwrap().size, want);
    assert_eq!(store.last_entry_index().unwrap(), Some(want - 1));
    // Every index once, in order; each process's entries in the order it appended them.
    let mut next_index = 0;
    let mut next_i = vec![0u64; PROCESSES as usize];
    let (mut last_p, mut switches) = (u64::MAX, 0u64);
    store
        .scan_entries(0..u64::MAX, &mut |r| {
            assert_eq!(r.entry.index, next_index, "rows must be dense and unique");
            next_index += 1;
            let d: serde_json::Value = serde_json::from_str(r.entry.detail).unwrap();
            let (p, i) = (d["p"].as_u64().unwrap(), d["i"].as_u64().unwrap());
            assert_eq!(
                i, next_i[p as usize],
                "process {p}: entry {i} at index {}, expected its entry {}",
                r.entry.index, next_i[p as usize]
            );
            next_i[p as usize] += 1;
            switches += u64::from(last_p != p);
            last_p = p;
            Ok(())
        })
        .unwrap();
    assert_eq!(next_index, want);
    assert_eq!(
        next_i,
        vec![APPENDS; PROCESSES as usize],
        "entries per process"
    );
    eprintln!("{PROCESSES} processes: the writer changed {switches} times along the chain");
    let ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
    let report = verify_store(&*store, ledger.hasher(), None, &VerifyOptions::default()).unwrap();
    assert!(report.valid, "{:?}", report.violations);
    assert_eq!(report.entries_checked, want);
}

const KILL_VAR: &str = "CORTEX_TEST_SQLITE_KILLED_PATH";

/// The body of the writer that `kill_9_loses_no_acknowledged_entry` kills (does nothing
/// otherwise): eight group-commit writer threads and one batch writer, until killed.
#[test]
fn killed_writer_process() {
    let Ok(path) = std::env::var(KILL_VAR) else {
        return;
    };
    let signer = Ed25519Signer::from_skey(&std::env::var(SKEY_VAR).unwrap()).unwrap();
    run_writer(
        writer_ledger(open(Path::new(&path)), Arc::new(signer)),
        Load::default(),
    );
}

/// `kill -9` of a writer under load, 12 times: every acknowledged entry is stored exactly as
/// acknowledged, the chain verifies, and a checkpoint can be signed afterwards.
#[test]
fn kill_9_loses_no_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill.db");
    let signer = Ed25519Signer::generate("example.com/kill").unwrap();
    let summary = kill_9_rounds(&KillTest {
        rounds: 12,
        min_run: Duration::from_millis(150),
        max_run: Duration::from_millis(600),
        writer: &|| {
            let mut c = child("killed_writer_process");
            c.env(KILL_VAR, &path).env(SKEY_VAR, signer.to_skey());
            c
        },
        open: &|| open(&path),
        signer: Arc::new(Ed25519Signer::from_skey(&signer.to_skey()).unwrap()) as Arc<dyn Signer>,
    });
    eprintln!("sqlite kill -9: {summary:?}");
}
