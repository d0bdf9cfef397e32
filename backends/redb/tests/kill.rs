//! `kill -9` of a redb writer under load loses no acknowledged entry.
//!
//! The test binary re-executes itself as the writer (`--exact killed_writer_process` with an
//! environment variable naming the file; the child test returns at once when it is unset). A redb
//! file has one user at a time, so the writer is the only one while it runs, and the test opens
//! the file only after the killed writer has ended; that open recovers the file after the crash.
//!
//! `SIGKILL` ends the writer process but not the machine (the page cache survives), so this shows
//! durability against a process crash, not against power loss.

use cortex_core::testkit::crash::{
    KillTest, Load, SKEY_VAR, kill_9_rounds, run_writer, writer_ledger,
};
use cortex_core::{DynStore, Signer};
use cortex_ed25519::Ed25519Signer;
use cortex_redb::RedbStore;
use std::cell::Cell;
use std::path::Path;
use std::process::Command;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

const KILL_VAR: &str = "CORTEX_TEST_REDB_KILLED_PATH";

fn open(path: &Path) -> DynStore {
    Arc::new(RedbStore::open(path).unwrap_or_else(|e| panic!("reopen after the crash: {e}")))
}

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

/// `kill -9` of a writer under load, 12 times: the file reopens, every acknowledged entry is
/// stored exactly as acknowledged, the chain verifies, and a checkpoint can be signed afterwards.
#[test]
fn kill_9_loses_no_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill.redb");
    let signer = Ed25519Signer::generate("example.com/kill").unwrap();
    let (opens, repaired) = (Cell::new(0u32), Cell::new(0u32));
    let summary = kill_9_rounds(&KillTest {
        rounds: 12,
        min_run: Duration::from_millis(150),
        max_run: Duration::from_millis(600),
        writer: &|| {
            let mut c = Command::new(std::env::current_exe().unwrap());
            c.args([
                "--exact",
                "killed_writer_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(KILL_VAR, &path)
            .env(SKEY_VAR, signer.to_skey());
            c
        },
        open: &|| {
            // Every other round, open the file with redb directly first, to see that the kill
            // left it needing repair; in the other rounds `RedbStore::open` repairs it itself.
            opens.set(opens.get() + 1);
            if opens.get() % 2 == 0 {
                let needed = Rc::new(Cell::new(false));
                let n = needed.clone();
                let db = redb::Database::builder()
                    .set_repair_callback(move |_| n.set(true))
                    .create(&path)
                    .unwrap_or_else(|e| panic!("redb repair after the crash: {e}"));
                drop(db);
                repaired.set(repaired.get() + u32::from(needed.get()));
            }
            open(&path)
        },
        signer: Arc::new(Ed25519Signer::from_skey(&signer.to_skey()).unwrap()) as Arc<dyn Signer>,
    });
    eprintln!(
        "redb kill -9: {summary:?}; {} of {} probed files needed repair",
        repaired.get(),
        opens.get() / 2
    );
    assert!(
        repaired.get() > 0,
        "no kill left the file needing repair: the test does not reach redb's recovery"
    );
}
