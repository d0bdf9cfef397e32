//! One CORTEX instance anchors another over loopback: ledger A (cortex_core::Ledger, Ed25519
//! key) submits its checkpoints through `WitnessAnchor` to witness B (`WitnessServer` on
//! 127.0.0.1:0 with a SQLite state file).

mod common;

use cortex_core::{
    Anchor, Checkpoint, ErrorKind, InMemoryStore, Ledger, LedgerOptions, NewEntry, Receipt,
    SignedNote, Submission,
};
use cortex_ed25519::Ed25519Signer;
use cortex_witness::{KnownLogs, WitnessAnchor, WitnessSigner};
use std::sync::Arc;
use std::time::Duration;

const ORIGIN: &str = "example.com/ledger-a";

fn ledger(signer: Arc<Ed25519Signer>) -> Ledger {
    let mut l = Ledger::open(
        Arc::new(InMemoryStore::new()),
        LedgerOptions {
            hasher: None,
            checkpoint_every: 0,
        },
    )
    .unwrap();
    l.add_signer(signer).unwrap();
    l
}

/// Appends `n` entries tagged `tag` and returns the new checkpoint's note.
fn grow(l: &Ledger, n: usize, tag: &str) -> String {
    let entries: Vec<NewEntry> = (0..n)
        .map(|i| {
            NewEntry::new(
                "p",
                "test.append",
                format!("{{\"tag\":\"{tag}\",\"i\":{i}}}"),
            )
        })
        .collect();
    l.append(&entries).unwrap();
    l.checkpoint().unwrap().record.note
}

fn checkpoint_of(note: &str) -> Checkpoint {
    Checkpoint::parse(&SignedNote::parse(note.as_bytes()).unwrap().text).unwrap()
}

async fn submit(anchor: &WitnessAnchor, l: &Ledger, note: &str) -> cortex_core::Result<Receipt> {
    let cp = checkpoint_of(note);
    anchor
        .submit(Submission {
            note,
            checkpoint: &cp,
            proofs: l,
        })
        .await
}

fn logs_for(key: &Ed25519Signer) -> KnownLogs {
    KnownLogs::parse(&format!("{}\n", key.to_vkey())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_is_witnessed_by_another_instance() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("witness.db");
    let log_key = Arc::new(Ed25519Signer::generate(ORIGIN).unwrap());
    let witness_key = WitnessSigner::generate("example.com/witness-b").unwrap();
    let witness_vkey = witness_key.to_vkey();
    let witness_skey = witness_key.to_skey();
    let b = common::start(witness_key, logs_for(&log_key), &db).await;
    let a = ledger(log_key.clone());
    let anchor = WitnessAnchor::new(&b.url, &witness_vkey).unwrap();

    // Honest growth: every checkpoint is cosigned, and each receipt verifies offline.
    let mut notes: Vec<String> = Vec::new();
    for round in 0..4 {
        let note = grow(&a, 3, &format!("r{round}"));
        let receipt = submit(&anchor, &a, &note).await.unwrap();
        assert_eq!(receipt.anchor, "witness");
        assert_eq!(receipt.target, b.url);
        assert!(receipt.body.starts_with("\u{2014} example.com/witness-b "));
        let offline = WitnessAnchor::new("http://127.0.0.1:9", &witness_vkey).unwrap();
        offline.verify_receipt(&note, &receipt).unwrap();
        if let Some(previous) = notes.last() {
            let e = offline.verify_receipt(previous, &receipt).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
        }
        notes.push(note);
    }
    let head = b.server.state().latest(ORIGIN).unwrap().unwrap();
    assert_eq!(head.size, 12);
    let whole = b.server.state().cosigned_notes(ORIGIN).unwrap();
    assert_eq!(whole.len(), 4);
    for (w, note) in whole.iter().zip(&notes) {
        assert!(
            w.starts_with(note.as_str()),
            "the log's note, then the cosignature"
        );
        let text = SignedNote::parse(w.as_bytes()).unwrap().text;
        anchor
            .verifier()
            .verify_lines(&text, &w[note.len()..])
            .unwrap();
    }

    // A restarted client (fresh cache) starts from 0, gets 409 "12", retries from 12.
    let restarted = WitnessAnchor::new(&b.url, &witness_vkey).unwrap();
    let note = grow(&a, 2, "after-restart");
    restarted
        .verify_receipt(&note, &submit(&restarted, &a, &note).await.unwrap())
        .unwrap();
    assert_eq!(b.server.state().latest(ORIGIN).unwrap().unwrap().size, 14);

    // A forged checkpoint: same origin, another key. 403, a Config error naming it.
    let forger = ledger(Arc::new(Ed25519Signer::generate(ORIGIN).unwrap()));
    let forged = grow(&forger, 20, "forged");
    let e = submit(&restarted, &forger, &forged).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("HTTP 403"), "{e}");

    // An inconsistent checkpoint: the log's own key over another tree. 422, Integrity.
    let fork = ledger(log_key.clone());
    let forked = grow(&fork, 20, "fork");
    let e = submit(&restarted, &fork, &forked).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(e.to_string().contains("HTTP 422"), "{e}");
    assert!(e.to_string().contains("consistency proof"), "{e}");

    // A rollback: an older checkpoint of the same log. The client reports a Conflict.
    let fresh = WitnessAnchor::new(&b.url, &witness_vkey).unwrap();
    let e = submit(&fresh, &a, &notes[1]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains("size 14"), "{e}");
    // On the wire: from the stored size it is a 400 (old above the new size), from a stale
    // size a 409 with the stored size.
    let (status, _, body) = common::post(&b.url, &format!("old 14\n\n{}", notes[1])).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "old size 14 is above the checkpoint size 6\n")
    );
    let (status, ctype, body) = common::post(&b.url, &format!("old 6\n\n{}", notes[1])).await;
    assert_eq!(
        (status, ctype.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "14\n")
    );
    // Same size, other root (a fork at size 14): 409.
    let fork14 = ledger(log_key.clone());
    let note14 = grow(&fork14, 14, "fork14");
    let (status, _, body) = common::post(&b.url, &format!("old 14\n\n{note14}")).await;
    assert_eq!((status, body.as_str()), (409, "14\n"));
    assert_eq!(
        b.server.state().latest(ORIGIN).unwrap().unwrap().size,
        14,
        "nothing moved"
    );

    // The witness restarts on the same state file: it remembers size 14.
    b.stop();
    let b2 = common::start(
        WitnessSigner::from_skey(&witness_skey).unwrap(),
        logs_for(&log_key),
        &db,
    )
    .await;
    let (status, _, body) = common::post(&b2.url, &format!("old 0\n\n{}", notes[0])).await;
    assert_eq!((status, body.as_str()), (409, "14\n"));
    let after = WitnessAnchor::new(&b2.url, &witness_vkey).unwrap();
    let note = grow(&a, 1, "after-witness-restart");
    after
        .verify_receipt(&note, &submit(&after, &a, &note).await.unwrap())
        .unwrap();
    assert_eq!(b2.server.state().cosigned_notes(ORIGIN).unwrap().len(), 6);
    b2.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let log_key = Arc::new(Ed25519Signer::generate(ORIGIN).unwrap());
    let witness_key = WitnessSigner::generate("example.com/witness-b").unwrap();
    let witness_vkey = witness_key.to_vkey();
    let b = common::start(witness_key, logs_for(&log_key), &dir.path().join("w.db")).await;

    // An unknown log: 404, a Config error.
    let stranger = ledger(Arc::new(
        Ed25519Signer::generate("example.com/stranger").unwrap(),
    ));
    let note = grow(&stranger, 2, "s");
    let anchor = WitnessAnchor::new(&b.url, &witness_vkey).unwrap();
    let e = submit(&anchor, &stranger, &note).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(
        e.to_string().contains("HTTP 404") && e.to_string().contains("unknown log"),
        "{e}"
    );

    // A witness whose cosignature does not verify with the configured key: no receipt.
    let a = ledger(log_key.clone());
    let note = grow(&a, 2, "a");
    let other = WitnessSigner::generate("example.com/witness-b")
        .unwrap()
        .to_vkey();
    let wrong = WitnessAnchor::new(&b.url, &other).unwrap();
    let e = submit(&wrong, &a, &note).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(e.to_string().contains("does not verify"), "{e}");

    // Nobody listening: Unavailable.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let down = WitnessAnchor::new(&format!("http://{closed}"), &witness_vkey).unwrap();
    let e = submit(&down, &a, &note).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("unreachable"), "{e}");

    // A server that accepts and never answers (a mock, for the timeout path): Unavailable.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let slow = WitnessAnchor::with_timeout(
        &format!("http://{silent_addr}"),
        &witness_vkey,
        Duration::from_millis(300),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let e = submit(&slow, &a, &note).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
    hold.abort();

    // Bad configuration is refused up front.
    for (url, key, why) in [
        ("not a url", witness_vkey.as_str(), "is not a URL"),
        (
            "ftp://w.example",
            witness_vkey.as_str(),
            "has scheme \"ftp\"",
        ),
        ("http://w.example", "nonsense", "wrong number of parts"),
    ] {
        let e = WitnessAnchor::new(url, key).unwrap_err();
        assert!(e.to_string().contains(why), "{url} {key}: {e}");
    }

    // https exactly when the crate's `https` feature is on (the binary turns it on).
    assert_eq!(
        WitnessAnchor::new("https://w.example", &witness_vkey).is_ok(),
        cfg!(feature = "https")
    );

    // A receipt that is not a cosignature line fails to verify, it does not panic.
    let bad = Receipt {
        anchor: "witness".into(),
        target: b.url.clone(),
        body: "garbage\n".into(),
        created_at: String::new(),
    };
    assert_eq!(
        anchor.verify_receipt(&note, &bad).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submissions_never_roll_the_witness_back() {
    let dir = tempfile::tempdir().unwrap();
    let log_key = Arc::new(Ed25519Signer::generate(ORIGIN).unwrap());
    let witness_key = WitnessSigner::generate("example.com/witness-b").unwrap();
    let b = common::start(witness_key, logs_for(&log_key), &dir.path().join("w.db")).await;
    let a = ledger(log_key.clone());
    let first = grow(&a, 4, "base");
    let (s, _, _) = common::post(&b.url, &format!("old 0\n\n{first}")).await;
    assert_eq!(s, 200);
    // Many checkpoints of growing sizes, all claiming old 4, posted at once: whatever order
    // they land in, the stored size only grows, and exactly one of them is cosigned.
    let mut bodies = Vec::new();
    for k in 1..=8 {
        let note = grow(&a, 1, &format!("c{k}"));
        let cp = checkpoint_of(&note);
        let proof = cortex_core::ConsistencyProver::consistency_proof(&a, 4, cp.size).unwrap();
        bodies.push(
            cortex_witness::AddCheckpoint {
                old_size: 4,
                proof,
                note,
            }
            .to_body(),
        );
    }
    let url = b.url.clone();
    let posts = bodies.into_iter().map(move |body| {
        let url = url.clone();
        async move { common::post(&url, &body).await }
    });
    let results = futures_join(posts).await;
    let ok: Vec<_> = results.iter().filter(|r| r.0 == 200).collect();
    assert_eq!(ok.len(), 1, "{results:?}");
    let stored = b.server.state().latest(ORIGIN).unwrap().unwrap().size;
    assert!(stored > 4);
    for r in results.iter().filter(|r| r.0 != 200) {
        assert_eq!(r.0, 409, "{r:?}");
        assert_eq!(r.2, format!("{stored}\n"));
    }
    b.stop();
}

/// Runs futures concurrently on the runtime and collects their outputs in order.
async fn futures_join<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
