//! Signed notes, verifier keys and checkpoints against public vectors:
//!
//! - `signed-note/signed-note-vectors.json`: 23 cases extracted from C2SP `signed-note`,
//!   golang.org/x/mod/sumdb/note and transparency-dev/formats. Each case's `expect` text says what
//!   must happen, and every case is consumed and counted.
//! - `tessera-testdata-log/testdata/log`: a complete 15-entry tlog-tiles log written by Tessera,
//!   with a signed checkpoint at every size from 0 to 15. Each checkpoint verifies, commits to the
//!   RFC 6962 root of the entries in the log's entry bundles, and is reproduced byte for byte by
//!   re-signing its body with the log's (test) private key.
//!
//! The vectors live in `../shared/vectors` next to the workspace. When they are absent a test says
//! so and passes, unless `CI=true`, where a missing vectors folder fails the test.

use cortex_core::ledger::merkle;
use cortex_core::ledger::note::{NoteSignature, SignedNote, VerifierKey};
use cortex_core::ledger::tiles::Tile;
use cortex_core::{Checkpoint, Hash, Hasher, Sha256Hasher, Signer, Verifier};
use cortex_ed25519::{Ed25519Signer, Ed25519Verifier};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The shared vectors folder, or `None` (after saying so) if it is missing outside CI.
fn vectors_dir(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors");
    if dir.is_dir() {
        return Some(dir);
    }
    cortex_core::testkit::skip(
        test,
        &format!("the test vectors folder {} is missing", dir.display()),
    );
    None
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn hex_decode(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn str_field<'a>(case: &'a Value, name: &str) -> &'a str {
    case[name]
        .as_str()
        .unwrap_or_else(|| panic!("case {} has no string field {name}", case["id"]))
}

/// The names inside the brackets of `<label> = [name keyid, …]` in an `expect` text.
fn bracketed_names(part: &str) -> Vec<String> {
    let inner = part
        .split_once('[')
        .and_then(|(_, r)| r.split_once(']'))
        .map(|(l, _)| l)
        .unwrap_or_else(|| panic!("no [...] list in {part:?}"));
    inner
        .split(',')
        .map(|item| item.split_whitespace().next().expect("a name").to_owned())
        .collect()
}

/// Parses the text after the last `prefix` as a number in `radix` (up to the next non-digit).
fn number_after(text: &str, prefix: &str, radix: u32) -> u64 {
    let rest = &text[text
        .rfind(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} in {text:?}"))
        + prefix.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_digit(radix))
        .collect();
    u64::from_str_radix(&digits, radix).unwrap_or_else(|_| panic!("number after {prefix:?}"))
}

/// How many cases of each kind the vector file holds.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    valid_notes: usize,
    rejected_notes: usize,
    signed_deterministically: usize,
    vkeys_accepted: usize,
    vkeys_rejected: usize,
    key_pairs: usize,
    cosignatures: usize,
    checkpoint_bodies: usize,
}

#[test]
fn signed_note_vectors() {
    let Some(dir) = vectors_dir("signed_note_vectors") else {
        return;
    };
    let path = dir.join("signed-note/signed-note-vectors.json");
    let doc: Value = serde_json::from_slice(&read(&path)).expect("vectors are JSON");
    let cases = doc["cases"].as_array().expect("cases[]");
    assert_eq!(cases.len(), 23, "signed-note cases");
    let mut n = Counts::default();
    for case in cases {
        let id = str_field(case, "id");
        let expect = str_field(case, "expect");
        let has = |f: &str| !case[f].is_null();
        if has("note") || has("note_hex") {
            note_case(case, id, expect, &mut n);
        } else if has("signature_b64") {
            cosignature_case(case, id, expect);
            n.cosignatures += 1;
        } else if has("skey") {
            key_pair_case(&dir, case, id, expect);
            n.key_pairs += 1;
        } else if has("vkey") {
            if vkey_case(case, id, expect) {
                n.vkeys_accepted += 1;
            } else {
                n.vkeys_rejected += 1;
            }
        } else if has("text") {
            checkpoint_body_case(case, id, expect);
            n.checkpoint_bodies += 1;
        } else {
            panic!("{id}: a case of an unknown kind");
        }
    }
    assert_eq!(
        n,
        Counts {
            valid_notes: 4,
            rejected_notes: 8,
            signed_deterministically: 1,
            vkeys_accepted: 2,
            vkeys_rejected: 5,
            key_pairs: 1,
            cosignatures: 2,
            checkpoint_bodies: 1,
        }
    );
}

fn note_case(case: &Value, id: &str, expect: &str, n: &mut Counts) {
    let bytes = match case["note"].as_str() {
        Some(s) => s.as_bytes().to_vec(),
        None => hex_decode(str_field(case, "note_hex")),
    };
    let vkey = str_field(case, "vkey");
    let verifier = Ed25519Verifier::from_vkey(vkey).unwrap_or_else(|e| panic!("{id}: {e}"));
    let verifiers: [&dyn Verifier; 1] = [&verifier];
    if let Some(why) = expect.strip_prefix("reject: ") {
        n.rejected_notes += 1;
        if why.starts_with("malformed note") {
            assert!(
                SignedNote::parse(&bytes).is_err(),
                "{id}: a malformed note parsed"
            );
        } else if why.starts_with("invalid signature") {
            let note = SignedNote::parse(&bytes).unwrap_or_else(|e| panic!("{id}: {e}"));
            let err = note.verify(&verifiers).expect_err(id);
            assert!(err.to_string().contains("invalid signature"), "{id}: {err}");
        } else {
            panic!("{id}: unknown rejection {expect:?}");
        }
        return;
    }
    assert!(
        expect.starts_with("valid"),
        "{id}: unknown expectation {expect:?}"
    );
    n.valid_notes += 1;
    let note = SignedNote::parse(&bytes).unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(
        note.to_text().as_bytes(),
        bytes,
        "{id}: the note re-serializes exactly"
    );
    let verified = note
        .verify(&verifiers)
        .unwrap_or_else(|e| panic!("{id}: {e}"));
    // "valid; verified = [A]", "valid; verified sigs = [A id]; unverified (…) = [B id]", "valid".
    let mut want_verified = vec![verifier.key_name().to_owned()];
    for part in expect.split(';').map(str::trim) {
        if part.starts_with("verified") {
            want_verified = bracketed_names(part);
        } else if part.starts_with("unverified") {
            for name in bracketed_names(part) {
                assert!(
                    note.signatures.iter().any(|s| s.name == name),
                    "{id}: the note carries a signature by {name}"
                );
                assert!(
                    !verified.contains(&name),
                    "{id}: {name} must stay unverified"
                );
            }
        }
    }
    assert_eq!(verified, want_verified, "{id}");
    if let Some(text) = case["verified_text"].as_str() {
        assert_eq!(note.text, text, "{id}");
    }
    if expect.contains("byte-for-byte") {
        let signer = Ed25519Signer::from_skey(str_field(case, "skey")).expect(id);
        assert_eq!(signer.to_vkey(), vkey, "{id}");
        let text = str_field(case, "text");
        let signed = SignedNote {
            text: text.to_owned(),
            signatures: vec![NoteSignature {
                name: signer.key_name().to_owned(),
                key_id: signer.note_key_id().expect("a note key"),
                signature: signer.sign(text.as_bytes()).unwrap(),
            }],
        };
        assert_eq!(signed.to_text().as_bytes(), bytes, "{id}: re-signed note");
        n.signed_deterministically += 1;
    }
}

/// Returns whether the key was (rightly) accepted.
fn vkey_case(case: &Value, id: &str, expect: &str) -> bool {
    let vkey = str_field(case, "vkey");
    if expect.starts_with("reject") {
        assert!(VerifierKey::parse(vkey).is_err(), "{id}: accepted {vkey}");
        assert!(
            Ed25519Verifier::from_vkey(vkey).is_err(),
            "{id}: accepted {vkey}"
        );
        return false;
    }
    assert!(
        expect.starts_with("parse OK"),
        "{id}: unknown expectation {expect:?}"
    );
    let k = VerifierKey::parse(vkey).unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(k.to_text(), vkey, "{id}: the key re-serializes exactly");
    let alg = number_after(expect, "type 0x", 16) as u8;
    assert_eq!(k.algorithm, alg, "{id}");
    if expect.contains("key ID") {
        let want = expect.rsplit(' ').next().expect("key ID");
        assert_eq!(hex_id(k.key_id), want, "{id}");
    }
    // Only 0x01 keys verify note signatures; a cosignature/v1 key is a witness key.
    assert_eq!(
        Ed25519Verifier::from_vkey(vkey).is_ok(),
        alg == 0x01,
        "{id}"
    );
    true
}

fn hex_id(id: [u8; 4]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `cosignature/v1` signature is key ID ‖ u64be timestamp ‖ Ed25519 signature (76 bytes);
/// a plain note signature (68 bytes) is not one. Read through the note parser.
fn cosignature_case(case: &Value, id: &str, expect: &str) {
    let line = format!(
        "\u{2014} witness.example {}\n",
        str_field(case, "signature_b64")
    );
    let note = SignedNote::parse(format!("body\n\n{line}").as_bytes()).expect(id);
    let sig = &note.signatures[0];
    let total = 4 + sig.signature.len();
    if expect.starts_with("reject") {
        let want = number_after(expect, "reject:", 10) as usize;
        assert_eq!(total, want, "{id}");
        assert_ne!(total, 4 + 8 + 64, "{id}: not the cosignature/v1 length");
        return;
    }
    let stated: usize = expect
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .expect("a length");
    assert_eq!(total, stated, "{id}");
    assert_eq!(total, 4 + 8 + 64, "{id}");
    let want_id = expect
        .split_once("keyID ")
        .map(|(_, r)| &r[..8])
        .expect("keyID");
    assert_eq!(hex_id(sig.key_id), want_id, "{id}");
    let timestamp = u64::from_be_bytes(sig.signature[..8].try_into().unwrap());
    assert_eq!(timestamp, number_after(expect, "timestamp", 10), "{id}");
}

/// The Tessera test key: the signer key gives the verifier key, which verifies the checkpoints.
fn key_pair_case(dir: &Path, case: &Value, id: &str, expect: &str) {
    let signer = Ed25519Signer::from_skey(str_field(case, "skey")).expect(id);
    let vkey = str_field(case, "vkey");
    assert_eq!(signer.to_vkey(), vkey, "{id}");
    let verifier = Ed25519Verifier::from_vkey(vkey).expect(id);
    let want = number_after(expect, "verifies all", 10) as usize;
    let log = dir.join("tessera-testdata-log/testdata/log");
    let mut verified = 0;
    for size in 0..want {
        let note = SignedNote::parse(&read(&log.join(format!("checkpoint.{size}")))).expect(id);
        note.verify(&[&verifier]).expect(id);
        verified += 1;
    }
    assert_eq!(verified, 16, "{id}");
}

/// A sumdb tree note body is a checkpoint body; its root here is RecordHash("hello world").
fn checkpoint_body_case(case: &Value, id: &str, expect: &str) {
    assert!(
        expect.starts_with("checkpoint-shaped body"),
        "{id}: {expect:?}"
    );
    let text = str_field(case, "text");
    let c = Checkpoint::parse(text).unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(c.origin, "go.sum database tree");
    assert_eq!(c.size, 123_456_789_012);
    assert_eq!(c.root, Sha256Hasher.leaf(b"hello world"), "{id}");
    assert!(c.extensions.is_empty());
    assert_eq!(c.to_text(), text, "{id}");
}

const TESSERA_ORIGIN: &str = "example.com/log/testdata";
const TESSERA_VKEY: &str =
    "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";
const TESSERA_SKEY: &str =
    "PRIVATE+KEY+example.com/log/testdata+33d7b496+AeymY/SZAX0jZcJ8enZ5FY1Dz+wTML2yWSkK+9DSF3eg";
/// The log's entries, in order (spelled as in Tessera's `testdata/build_log.sh`).
const TESSERA_ENTRIES: [&str; 15] = [
    "one", "two", "three", "four", "five", "six", "seven", "eit", "nain", "ten", "ileven", "twelf",
    "threeten", "fourten", "fivten",
];

fn tessera_leaves() -> Vec<Hash> {
    TESSERA_ENTRIES
        .iter()
        .map(|e| Sha256Hasher.leaf(e.as_bytes()))
        .collect()
}

/// A tlog-tiles entry bundle: entries, each prefixed by its big-endian 16-bit length.
fn parse_bundle(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_at_checked(2).expect("a length prefix");
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        let (entry, rest) = rest.split_at_checked(len).expect("a whole entry");
        out.push(entry.to_vec());
        bytes = rest;
    }
    out
}

/// The checkpoint files: `checkpoint.{0..15}` and the latest, `checkpoint`, with their sizes.
fn tessera_checkpoints(log: &Path) -> Vec<(String, u64, Vec<u8>)> {
    let mut files: Vec<(String, u64)> = (0..=15u64)
        .map(|n| (format!("checkpoint.{n}"), n))
        .collect();
    files.push(("checkpoint".to_owned(), 15));
    files
        .into_iter()
        .map(|(name, size)| {
            let bytes = read(&log.join(&name));
            (name, size, bytes)
        })
        .collect()
}

#[test]
fn tessera_entry_bundles_and_level_0_tiles() {
    let Some(dir) = vectors_dir("tessera_entry_bundles_and_level_0_tiles") else {
        return;
    };
    let log = dir.join("tessera-testdata-log/testdata/log");
    let leaves = tessera_leaves();
    let mut checked = 0;
    for n in 1..=15usize {
        let bundle = parse_bundle(&read(&log.join(format!("tile/entries/000.p/{n}"))));
        let want: Vec<&[u8]> = TESSERA_ENTRIES[..n].iter().map(|e| e.as_bytes()).collect();
        assert_eq!(bundle, want, "entry bundle 000.p/{n}");
        let tile = read(&log.join(format!("tile/0/000.p/{n}")));
        let want: Vec<u8> = leaves[..n].iter().flat_map(|h| h.0).collect();
        assert_eq!(tile, want, "level-0 tile 000.p/{n}");
        assert_eq!(Tile::decode(&tile).unwrap(), &leaves[..n]);
        checked += 1;
    }
    assert_eq!(checked, 15);
}

#[test]
fn tessera_checkpoints_verify_and_commit_to_the_entries() {
    let Some(dir) = vectors_dir("tessera_checkpoints_verify_and_commit_to_the_entries") else {
        return;
    };
    let log = dir.join("tessera-testdata-log/testdata/log");
    let verifier = Ed25519Verifier::from_vkey(TESSERA_VKEY).unwrap();
    // The leaves are those of the entries read back from the bundles, not of the constants.
    let entries = parse_bundle(&read(&log.join("tile/entries/000.p/15")));
    let leaves: Vec<Hash> = entries.iter().map(|e| Sha256Hasher.leaf(e)).collect();
    assert_eq!(leaves, tessera_leaves());
    let checkpoints = tessera_checkpoints(&log);
    for (name, size, bytes) in &checkpoints {
        let note = SignedNote::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            note.verify(&[&verifier])
                .unwrap_or_else(|e| panic!("{name}: {e}")),
            vec![TESSERA_ORIGIN.to_owned()],
            "{name}"
        );
        let c = Checkpoint::parse(&note.text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(c.origin, TESSERA_ORIGIN, "{name}");
        assert_eq!(c.size, *size, "{name}");
        assert!(c.extensions.is_empty(), "{name}");
        assert_eq!(
            c.root,
            merkle::root_from_leaves(&Sha256Hasher, &leaves[..*size as usize]),
            "{name}: root of the first {size} entries"
        );
        // A signature over another body does not verify.
        let mut forged = note.clone();
        forged.text = note
            .text
            .replacen(&format!("\n{size}\n"), &format!("\n{}\n", size + 1), 1);
        assert!(
            forged.verify(&[&verifier]).is_err(),
            "{name}: forged size verified"
        );
    }
    assert_eq!(
        checkpoints.len(),
        17,
        "checkpoint.0 … checkpoint.15 and checkpoint"
    );
    assert_eq!(
        checkpoints[15].2, checkpoints[16].2,
        "checkpoint is checkpoint.15"
    );
}

#[test]
fn tessera_checkpoints_are_reproduced_by_re_signing() {
    let Some(dir) = vectors_dir("tessera_checkpoints_are_reproduced_by_re_signing") else {
        return;
    };
    let log = dir.join("tessera-testdata-log/testdata/log");
    let signer = Ed25519Signer::from_skey(TESSERA_SKEY).unwrap();
    assert_eq!(signer.to_vkey(), TESSERA_VKEY);
    let leaves = tessera_leaves();
    let mut reproduced = 0;
    for (name, size, bytes) in tessera_checkpoints(&log) {
        // Built from scratch: the body from the computed root, then an Ed25519 signature
        // (deterministic, RFC 8032), must equal Tessera's file byte for byte.
        let body = Checkpoint {
            origin: signer.key_name().to_owned(),
            size,
            root: merkle::root_from_leaves(&Sha256Hasher, &leaves[..size as usize]),
            extensions: Vec::new(),
        }
        .to_text();
        let note = SignedNote {
            signatures: vec![NoteSignature {
                name: signer.key_name().to_owned(),
                key_id: signer.note_key_id().expect("a note key"),
                signature: signer.sign(body.as_bytes()).unwrap(),
            }],
            text: body,
        };
        assert_eq!(
            note.to_text(),
            String::from_utf8(bytes).unwrap(),
            "{name} re-signed"
        );
        reproduced += 1;
    }
    assert_eq!(reproduced, 17);
}
