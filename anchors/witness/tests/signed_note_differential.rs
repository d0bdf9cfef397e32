//! Differential tests against Cloudflare's independent `signed_note` crate (azul), on the
//! ed25519-dalek 2 stack.
//!
//! signed_note 0.2.0 parses notes and signature lines, computes key IDs and verifies Ed25519
//! (0x01) notes, but has no cosignature/v1 type: its `Verifier`/`Signer` traits are generic,
//! so the cosignature/v1 verifier and signer below are written here from
//! c2sp.org/tlog-cosignature (message built by hand, Ed25519 by ed25519-dalek 2), independent
//! of this crate's code.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cortex_core::{Checkpoint, Hash, SignedNote};
use cortex_ed25519::Ed25519Signer;
use cortex_witness::{CosignatureVerifier, KnownLogs, WitnessSigner};
use ed25519_dalek_v2 as dalek2;
use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList, Verifiers};

/// A c2sp.org/tlog-cosignature Ed25519 verifier on signed_note's trait.
struct CosigV1Verifier {
    name: String,
    id: u32,
    key: dalek2::VerifyingKey,
}

impl CosigV1Verifier {
    fn new(name: &str, key: [u8; 32]) -> Self {
        let mut material = vec![0x04];
        material.extend_from_slice(&key);
        CosigV1Verifier {
            name: name.to_owned(),
            id: signed_note::key_id(name, &material),
            key: dalek2::VerifyingKey::from_bytes(&key).unwrap(),
        }
    }
}

fn cosigned_message(timestamp: u64, text: &[u8]) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    m.extend_from_slice(text);
    m
}

impl signed_note::Verifier for CosigV1Verifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 72 {
            return false;
        }
        let t = u64::from_be_bytes(sig[..8].try_into().unwrap());
        let s = dalek2::Signature::from_bytes(sig[8..].try_into().unwrap());
        dalek2::Verifier::verify(&self.key, &cosigned_message(t, msg), &s).is_ok()
    }
}

/// A c2sp.org/tlog-cosignature Ed25519 signer on signed_note's trait, at a fixed time.
struct CosigV1Signer {
    name: String,
    id: u32,
    key: dalek2::SigningKey,
    timestamp: u64,
}

impl signed_note::Signer for CosigV1Signer {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, dalek2::SignatureError> {
        let sig = dalek2::Signer::sign(&self.key, &cosigned_message(self.timestamp, msg));
        let mut out = self.timestamp.to_be_bytes().to_vec();
        out.extend_from_slice(&sig.to_bytes());
        Ok(out)
    }
}

/// The 32 public-key bytes of a vkey text form.
fn public_key(vkey: &str) -> [u8; 32] {
    let raw = B64.decode(vkey.splitn(3, '+').nth(2).unwrap()).unwrap();
    raw[1..].try_into().unwrap()
}

const TEXT: &str = "example.com/log\n5\nQrtXrQZCCvpIgsSmOsah7HdICzMLLyDfxToMql9WTjY=\n";

#[test]
fn cortex_cosignature_lines_verify_with_signed_note() {
    let w = WitnessSigner::generate("example.com/witness").unwrap();
    let cosig = w.cosign(TEXT, 1_712_345_678).unwrap();
    let line = cosig.to_line();
    let note = Note::from_bytes(format!("{TEXT}\n{line}").as_bytes()).unwrap();
    let theirs = CosigV1Verifier::new("example.com/witness", public_key(&w.to_vkey()));
    assert_eq!(theirs.id.to_be_bytes(), w.key_id(), "the same 0x04 key ID");
    let list = VerifierList::new(vec![Box::new(theirs)]);
    let (verified, _) = note.verify(&list).unwrap();
    assert_eq!(verified.len(), 1);
    assert_eq!(
        &verified[0].signature()[..8],
        &1_712_345_678u64.to_be_bytes()
    );
    // Their parse re-serializes to our exact line.
    assert_eq!(
        String::from_utf8(note.to_bytes()).unwrap(),
        format!("{TEXT}\n{line}")
    );

    // Over other text the same line fails for them too.
    let other = TEXT.replace("\n5\n", "\n6\n");
    let moved = Note::from_bytes(format!("{other}\n{line}").as_bytes()).unwrap();
    assert!(moved.verify(&list).is_err());
}

#[test]
fn signed_note_cosignatures_verify_with_cortex() {
    let key = dalek2::SigningKey::from_bytes(&[7u8; 32]);
    let public = key.verifying_key().to_bytes();
    let theirs = CosigV1Verifier::new("example.com/their-witness", public);
    let signer = CosigV1Signer {
        name: "example.com/their-witness".into(),
        id: theirs.id,
        key,
        timestamp: 1_700_000_123,
    };
    let mut note = Note::new(TEXT.as_bytes(), &[]).unwrap();
    note.add_sigs(&[&signer]).unwrap();
    let bytes = String::from_utf8(note.to_bytes()).unwrap();
    let lines = &bytes[TEXT.len() + 1..];

    let mut vkey_raw = vec![0x04];
    vkey_raw.extend_from_slice(&public);
    let vkey = format!(
        "example.com/their-witness+{:08x}+{}",
        theirs.id,
        B64.encode(vkey_raw)
    );
    let ours = CosignatureVerifier::from_vkey(&vkey).unwrap();
    let got = ours.verify_lines(TEXT, lines).unwrap();
    assert_eq!(got.timestamp, 1_700_000_123);
    assert!(ours.verify_lines(&TEXT.replace('5', "4"), lines).is_err());
}

#[test]
fn cortex_log_notes_verify_with_signed_note_and_back() {
    // Ours → theirs: a CORTEX Ed25519 note.
    let log = Ed25519Signer::generate("example.com/log").unwrap();
    let mut ours = SignedNote::new(TEXT).unwrap();
    ours.signatures
        .push(cortex_core::ledger::note::NoteSignature {
            name: "example.com/log".into(),
            key_id: cortex_core::Signer::note_key_id(&log).unwrap(),
            signature: cortex_core::Signer::sign(&log, TEXT.as_bytes()).unwrap(),
        });
    let their_v = StandardVerifier::new(&log.to_vkey()).unwrap();
    let list = VerifierList::new(vec![Box::new(their_v)]);
    Note::from_bytes(ours.to_text().as_bytes())
        .unwrap()
        .verify(&list)
        .unwrap();

    // Theirs → ours: a signed_note Ed25519 key and note, checked by CORTEX's note code.
    let (skey, vkey) = their_key("example.com/log");
    let mut theirs = Note::new(TEXT.as_bytes(), &[]).unwrap();
    theirs
        .add_sigs(&[&StandardSigner::new(&skey).unwrap()])
        .unwrap();
    let parsed = SignedNote::parse(&theirs.to_bytes()).unwrap();
    let logs = KnownLogs::parse(&format!("{vkey}\n")).unwrap();
    parsed
        .verify(&logs.keys("example.com/log").unwrap())
        .unwrap();
}

/// A signed_note Ed25519 key pair (skey, vkey), its key ID computed by signed_note.
fn their_key(name: &str) -> (String, String) {
    let key = dalek2::SigningKey::from_bytes(&[9u8; 32]);
    let vkey = signed_note::new_ed25519_verifier_key(name, &key.verifying_key());
    let id = vkey.split('+').nth(1).unwrap().to_owned();
    let mut raw = vec![0x01];
    raw.extend_from_slice(&key.to_bytes());
    (format!("PRIVATE+KEY+{name}+{id}+{}", B64.encode(raw)), vkey)
}

/// The witness server cosigns a note signed by signed_note; the log signature and the
/// cosignature, appended to the note, both verify with signed_note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_server_interoperates_with_signed_note() {
    let (skey, vkey) = their_key("example.com/their-log");
    let cp = Checkpoint {
        origin: "example.com/their-log".into(),
        size: 5,
        root: Hash([0x2a; 32]),
        extensions: vec![],
    };
    let mut note = Note::new(cp.to_text().as_bytes(), &[]).unwrap();
    note.add_sigs(&[&StandardSigner::new(&skey).unwrap()])
        .unwrap();
    let note = String::from_utf8(note.to_bytes()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let witness = WitnessSigner::generate("example.com/witness").unwrap();
    let public = public_key(&witness.to_vkey());
    let running = common::start(
        witness,
        KnownLogs::parse(&format!("{vkey}\n")).unwrap(),
        &dir.path().join("w.db"),
    )
    .await;
    let (status, _, lines) = common::post(&running.url, &format!("old 0\n\n{note}")).await;
    assert_eq!(status, 200, "{lines}");

    let cosigned = Note::from_bytes(format!("{note}{lines}").as_bytes()).unwrap();
    let list = VerifierList::new(vec![
        Box::new(StandardVerifier::new(&vkey).unwrap()),
        Box::new(CosigV1Verifier::new("example.com/witness", public)),
    ]);
    let (verified, unverified) = cosigned.verify(&list).unwrap();
    assert_eq!((verified.len(), unverified.len()), (2, 0));
    assert!(
        list.verifier("example.com/witness", verified[1].id())
            .is_ok()
    );
    running.stop();
}
