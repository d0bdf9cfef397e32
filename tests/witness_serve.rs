//! `cortex witness serve` as a separate process on loopback, used by an in-process ledger
//! through `WitnessAnchor`: cosigns, keeps its key and state across a restart, and refuses a
//! ledger checkpoint key as its witness key.

use cortex_core::{
    Anchor, Checkpoint, InMemoryStore, Ledger, LedgerOptions, NewEntry, SignedNote, Submission,
};
use cortex_ed25519::Ed25519Signer;
use cortex_witness::WitnessAnchor;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

fn cortex(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cortex"));
    command
        .env("CORTEX_HOME", home)
        .env_remove("CORTEX_DB")
        .env_remove("CORTEX_SIGNING_KEY");
    command
}

/// A running `cortex witness serve`, killed (by its own pid) when dropped.
struct Witness {
    child: Child,
    url: String,
    vkey: String,
}

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(home: &Path, logs: &Path) -> Witness {
    let mut child = cortex(home)
        .args([
            "--json",
            "witness",
            "serve",
            "--port",
            "0",
            "--name",
            "example.com/w",
        ])
        .arg("--logs")
        .arg(logs)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run cortex witness serve");
    // The first JSON object on stdout says where it listens.
    let mut text = String::new();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        text.push_str(&line);
        if line == "}" {
            break;
        }
    }
    let v: serde_json::Value = serde_json::from_str(&text).expect("startup JSON");
    Witness {
        child,
        url: v["listening"].as_str().unwrap().to_owned(),
        vkey: v["vkey"].as_str().unwrap().to_owned(),
    }
}

async fn submit(anchor: &WitnessAnchor, ledger: &Ledger, note: &str) -> cortex_core::Receipt {
    let cp = Checkpoint::parse(&SignedNote::parse(note.as_bytes()).unwrap().text).unwrap();
    let receipt = anchor
        .submit(Submission {
            note,
            checkpoint: &cp,
            proofs: ledger,
        })
        .await
        .unwrap();
    anchor.verify_receipt(note, &receipt).unwrap();
    receipt
}

fn grow(ledger: &Ledger, n: usize) -> String {
    let entries: Vec<NewEntry> = (0..n)
        .map(|i| NewEntry::new("p", "a", format!("{{\"i\":{i}}}")))
        .collect();
    ledger.append(&entries).unwrap();
    ledger.checkpoint().unwrap().record.note
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witness_serve_cosigns_and_survives_a_restart() {
    let home = tempfile::tempdir().unwrap();
    let log_key = Arc::new(Ed25519Signer::generate("example.com/e2e").unwrap());
    let logs = home.path().join("logs.txt");
    std::fs::write(&logs, format!("{}\n", log_key.to_vkey())).unwrap();
    let mut ledger =
        Ledger::open(Arc::new(InMemoryStore::new()), LedgerOptions::default()).unwrap();
    ledger.add_signer(log_key.clone()).unwrap();

    let w = start(home.path(), &logs);
    assert!(w.vkey.starts_with("example.com/w+"));
    let anchor = WitnessAnchor::new(&w.url, &w.vkey).unwrap();
    submit(&anchor, &ledger, &grow(&ledger, 3)).await;
    submit(&anchor, &ledger, &grow(&ledger, 4)).await;
    let vkey = w.vkey.clone();
    drop(w);

    // Same home: same key, and it remembers size 7 (a fresh client is told so by a 409 and
    // retries from 7).
    let w = start(home.path(), &logs);
    assert_eq!(w.vkey, vkey);
    let fresh = WitnessAnchor::new(&w.url, &w.vkey).unwrap();
    let receipt = submit(&fresh, &ledger, &grow(&ledger, 2)).await;
    assert!(receipt.body.starts_with("\u{2014} example.com/w "));
    let state = rusqlite::Connection::open(home.path().join("witness.db")).unwrap();
    let (size, rows): (i64, i64) = state
        .query_row(
            "SELECT (SELECT size FROM witness_log), (SELECT count(*) FROM witness_cosigned)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((size, rows), (9, 3));
    drop(w);
}

#[test]
fn witness_serve_refuses_bad_setups_by_name() {
    let home = tempfile::tempdir().unwrap();
    let logs = home.path().join("logs.txt");
    let ledger_key = home.path().join("ledger.skey");
    let out = cortex(home.path())
        .args(["keys", "generate", "--name", "example.com/l", "--out"])
        .arg(&ledger_key)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::copy(home.path().join("ledger.vkey"), &logs).unwrap();

    let refused = |args: &[&str], why: &str| {
        let out = cortex(home.path()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    };
    let logs_s = logs.to_str().unwrap();
    let key_s = ledger_key.to_str().unwrap();
    // No key yet and no name to make one.
    refused(
        &["witness", "serve", "--port", "0", "--logs", logs_s],
        "pass --name",
    );
    // The ledger's checkpoint key is not a witness key.
    refused(
        &[
            "witness",
            "serve",
            "--witness-key",
            key_s,
            "--port",
            "0",
            "--logs",
            logs_s,
        ],
        "not a witness (cosignature/v1) key",
    );
    // A logs file with no keys, and a missing one.
    let empty = home.path().join("empty.txt");
    std::fs::write(&empty, "# nothing\n").unwrap();
    let args = [
        "witness",
        "serve",
        "--port",
        "0",
        "--name",
        "example.com/w",
        "--logs",
    ];
    refused(
        &[&args[..], &[empty.to_str().unwrap()]].concat(),
        "lists no log keys",
    );
    refused(
        &[&args[..], &["/nonexistent/logs.txt"]].concat(),
        "cannot read the logs file",
    );
}
