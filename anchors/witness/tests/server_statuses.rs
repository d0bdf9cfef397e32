//! The witness server answers every kind of bad request with the status tlog-witness gives
//! and a reason, never a 500.

mod common;

use cortex_core::ledger::note::NoteSignature;
use cortex_core::{SignedNote, Signer};
use cortex_ed25519::Ed25519Signer;
use cortex_witness::{KnownLogs, WitnessSigner};

const ORIGIN: &str = "example.com/log";
const ROOT: &str = "KgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// A note of `text` signed by `key`.
fn signed(key: &Ed25519Signer, text: &str) -> String {
    let mut note = SignedNote::new(text).unwrap();
    note.signatures.push(NoteSignature {
        name: key.key_name().to_owned(),
        key_id: key.note_key_id().unwrap(),
        signature: key.sign(text.as_bytes()).unwrap(),
    });
    note.to_text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let key = Ed25519Signer::generate(ORIGIN).unwrap();
    let logs = KnownLogs::parse(&format!("{}\n", key.to_vkey())).unwrap();
    let w = common::start(
        WitnessSigner::generate("example.com/w").unwrap(),
        logs,
        &dir.path().join("w.db"),
    )
    .await;
    let good = signed(&key, &format!("{ORIGIN}\n5\n{ROOT}\n"));
    let huge = signed(&key, &format!("{ORIGIN}\n{}\n{ROOT}\n", u64::MAX));
    let unsigned = format!("{ORIGIN}\n5\n{ROOT}\n\n");
    let cases: Vec<(String, u16, &str)> = vec![
        ("garbage".into(), 400, "no blank line"),
        (format!("old x\n\n{good}"), 400, "not a decimal"),
        (
            format!("old 0\nnot-a-hash\n\n{good}"),
            400,
            "not a base64 hash",
        ),
        (format!("old 0\n\n{unsigned}"), 400, "malformed note"),
        (
            format!(
                "old 0\n\n{ORIGIN}\n5\nshort\n\n{}",
                &good[good.find("\u{2014}").unwrap()..]
            ),
            400,
            "malformed checkpoint",
        ),
        (format!("old 6\n\n{good}"), 400, "above the checkpoint size"),
        (format!("old 0\n\n{huge}"), 400, "above 2^63-1"),
        (format!("old 0\n{ROOT}\n\n{good}"), 422, "must be empty"),
        (format!("old 3\n\n{good}"), 409, "0\n"),
        (
            format!("old 0\n\n{}", good.replace(ORIGIN, "example.com/other")),
            404,
            "unknown log",
        ),
    ];
    for (body, status, why) in cases {
        let (got, _, text) = common::post(&w.url, &body).await;
        assert_eq!(got, status, "{body:?}: {text}");
        assert!(text.contains(why), "{body:?}: {text:?} lacks {why:?}");
    }
    // Other key, same name: 403.
    let other = Ed25519Signer::generate(ORIGIN).unwrap();
    let forged = signed(&other, &format!("{ORIGIN}\n5\n{ROOT}\n"));
    let (got, _, text) = common::post(&w.url, &format!("old 0\n\n{forged}")).await;
    assert_eq!(
        (got, text.contains("invalid signature")),
        (403, true),
        "{text}"
    );

    // Too large a body: 413; wrong method: 405; other path: 404.
    let big = format!("old 0\n\n{good}{}", "x".repeat(70_000));
    assert_eq!(common::post(&w.url, &big).await.0, 413);
    let client = reqwest::Client::new();
    let get = client
        .get(format!("{}/add-checkpoint", w.url))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let elsewhere = client
        .post(format!("{}/other", w.url))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status().as_u16(), 404);

    // Nothing above moved the log; the good request still gets its cosignature.
    assert!(w.server.state().latest(ORIGIN).unwrap().is_none());
    let (got, _, _) = common::post(&w.url, &format!("old 0\n\n{good}")).await;
    assert_eq!(got, 200);
    w.stop();
}
