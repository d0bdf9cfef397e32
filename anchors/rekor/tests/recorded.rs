//! Offline verification against recorded real Rekor v2 data (shared/vectors): the two production
//! `log2025-1` entries from sigstore-js, their tampered copies, the 19 checkpoint cases, and the
//! local rekor-tiles entry of tree size 1.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cortex_core::ErrorKind;
use cortex_rekor::{
    Artifact, RekorTrust, VerifiedEntry, certificate_public_key, log_vkey_from_spki,
    verify_checkpoint, verify_entry,
};
use serde_json::Value;
use std::path::PathBuf;

const ARTIFACT: &[u8] = b"hello, world!";
const PROD_VKEY: &str =
    "log2025-1.rekor.sigstore.dev+cf119915+AbfK5adZJxsI323FwGD2AJJ9F4i89cfDuLdGJBIYntuO";
const LOCAL_VKEY: &str = "rekor-local+d80b4420+AURLycjWRo1+gdwwCLg9wU4PayMFdNBmPF4ORVPiBQ1E";
/// Public staging witness keys (cosignature/v1), as their operators publish them (Geomys,
/// Mullvad, transparency.dev); they cosign the staging `log2025-alpha3` checkpoint.
const WITNESSES: [&str; 3] = [
    "witness.navigli.sunlight.geomys.org+a3e00fe2+BNy/co4C1Hn1p+INwJrfUlgz7W55dSZReusH/GhUhJ/G",
    "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv",
    "staging.witness.transparency.goog/ring-any-bells+2e1a8dc9+BG5JTpLc3FJtwzgh1Uv+Qelz9qeOH2bfWjS1s0s+y4rL",
];

fn vectors() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors");
    assert!(dir.is_dir(), "test vectors not found at {}", dir.display());
    dir
}

fn read_json(rel: &str) -> Value {
    let path = vectors().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The production log key, converted from the trusted root's SPKI as the vectors README says.
fn production_trust() -> RekorTrust {
    let root = read_json("sigstore-bundles/trusted_root.production.json");
    let tlog = root["tlogs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["baseUrl"] == "https://log2025-1.rekor.sigstore.dev")
        .expect("log2025-1 in the trusted root");
    let spki = B64
        .decode(tlog["publicKey"]["rawBytes"].as_str().unwrap())
        .unwrap();
    let vkey = log_vkey_from_spki(tlog["baseUrl"].as_str().unwrap(), &spki).unwrap();
    assert_eq!(vkey, PROD_VKEY);
    RekorTrust::new(&[&vkey], &[]).unwrap()
}

struct Bundle {
    entry: Value,
    signer: Vec<u8>,
    artifact: Artifact<'static>,
}

fn production_bundle(file: &str) -> Bundle {
    let b = read_json(&format!(
        "sigstore-bundles/sigstore-js-rekor-v2-production/{file}"
    ));
    let cert = B64
        .decode(
            b["verificationMaterial"]["certificate"]["rawBytes"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let artifact = match b["dsseEnvelope"]["payloadType"].as_str() {
        Some("text/plain") => Artifact::Dsse {
            payload_type: "text/plain",
            payload: ARTIFACT,
        },
        None => Artifact::Blob(ARTIFACT),
        Some(other) => panic!("unexpected payload type {other}"),
    };
    let payload =
        std::fs::read(vectors().join("sigstore-bundles/sigstore-js-rekor-v2-production/artifact"))
            .unwrap();
    assert_eq!(payload, ARTIFACT);
    Bundle {
        entry: b["verificationMaterial"]["tlogEntries"][0].clone(),
        signer: certificate_public_key(&cert).unwrap(),
        artifact,
    }
}

fn verify(b: &Bundle, entry: &Value, trust: &RekorTrust) -> cortex_core::Result<VerifiedEntry> {
    verify_entry(
        &serde_json::to_vec(entry).unwrap(),
        trust,
        b.artifact,
        Some(&b.signer),
    )
}

#[test]
fn production_entries_verify_against_the_production_log_key() {
    let trust = production_trust();
    for (file, kind, index) in [
        ("hashedrekord-v0.0.2.sigstore.json", "hashedrekord", 547661),
        ("dsse-v0.0.2.sigstore.json", "dsse", 544346),
    ] {
        let b = production_bundle(file);
        let v = verify(&b, &b.entry, &trust).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(v.kind, kind);
        assert_eq!(v.log_index, index);
        assert_eq!(v.checkpoint.size, index + 1);
        assert_eq!(v.checkpoint.origin, "log2025-1.rekor.sigstore.dev");
        assert_eq!(v.key_details, "PKIX_ECDSA_P256_SHA_256");
        assert_eq!(v.signer_spki, b.signer);
        assert!(v.witnesses.is_empty());
    }
}

fn b64_flip(s: &str, byte: usize) -> String {
    let mut raw = B64.decode(s).unwrap();
    raw[byte] ^= 0x01;
    B64.encode(raw)
}

fn bump(v: &Value) -> Value {
    let n: u64 = v.as_str().unwrap().parse().unwrap();
    Value::String((n + 1).to_string())
}

type Tamper = (
    &'static str,
    &'static str,
    fn(&mut Value, &mut Artifact<'static>),
);

/// Each tampering, and a word the error must contain.
const TAMPERINGS: [Tamper; 9] = [
    ("flipped proof hash", "inclusion proof", |e, _| {
        let h = &mut e["inclusionProof"]["hashes"][3];
        *h = Value::String(b64_flip(h.as_str().unwrap(), 7));
    }),
    ("altered canonicalizedBody", "inclusion proof", |e, _| {
        let body = String::from_utf8(
            B64.decode(e["canonicalizedBody"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        let altered = body.replacen("\"0.0.2\"", "\"0.0.3\"", 1);
        assert_ne!(body, altered);
        e["canonicalizedBody"] = Value::String(B64.encode(altered));
    }),
    (
        "altered logIndex (both copies)",
        "inclusion proof",
        |e, _| {
            e["logIndex"] = bump(&e["logIndex"]);
            e["inclusionProof"]["logIndex"] = bump(&e["inclusionProof"]["logIndex"]);
        },
    ),
    ("altered top-level logIndex", "differ", |e, _| {
        e["logIndex"] = bump(&e["logIndex"]);
    }),
    ("altered treeSize", "treeSize", |e, _| {
        e["inclusionProof"]["treeSize"] = bump(&e["inclusionProof"]["treeSize"]);
    }),
    ("altered checkpoint text", "signature", |e, _| {
        let env = e["inclusionProof"]["checkpoint"]["envelope"]
            .as_str()
            .unwrap();
        let (origin, rest) = env.split_once('\n').unwrap();
        let (size, rest) = rest.split_once('\n').unwrap();
        let size: u64 = size.parse().unwrap();
        e["inclusionProof"]["checkpoint"]["envelope"] =
            Value::String(format!("{origin}\n{}\n{rest}", size + 1));
    }),
    ("removed checkpoint signature", "signature", |e, _| {
        let env = e["inclusionProof"]["checkpoint"]["envelope"]
            .as_str()
            .unwrap();
        let body = &env[..env.find("\n\n").unwrap() + 2];
        e["inclusionProof"]["checkpoint"]["envelope"] = Value::String(body.to_owned());
    }),
    ("another artifact", "digest", |_, a| {
        *a = match *a {
            Artifact::Dsse { payload_type, .. } => Artifact::Dsse {
                payload_type,
                payload: b"hello, world?",
            },
            _ => Artifact::Blob(b"hello, world?"),
        };
    }),
    ("altered logId", "logId", |e, _| {
        let id = &mut e["logId"]["keyId"];
        *id = Value::String(b64_flip(id.as_str().unwrap(), 31));
    }),
];

#[test]
fn tampered_production_entries_are_rejected() {
    let trust = production_trust();
    for file in [
        "hashedrekord-v0.0.2.sigstore.json",
        "dsse-v0.0.2.sigstore.json",
    ] {
        for (what, word, tamper) in TAMPERINGS {
            let mut b = production_bundle(file);
            let mut entry = b.entry.clone();
            tamper(&mut entry, &mut b.artifact);
            let err =
                verify(&b, &entry, &trust).expect_err(&format!("{file}: {what} was accepted"));
            assert_eq!(err.kind(), ErrorKind::Integrity, "{file}: {what}: {err}");
            assert!(err.message().contains(word), "{file}: {what}: {err}");
        }
    }
}

#[test]
fn production_entries_are_rejected_with_a_wrong_log_key_or_another_signer() {
    let b = production_bundle("hashedrekord-v0.0.2.sigstore.json");
    // The staging log2025-alpha1 key: a real Rekor v2 key, not this log's.
    let staging = RekorTrust::new(
        &["log2025-alpha1.rekor.sigstage.dev+f30d5a99+AT5/gERB6AWme8IEtcwaqcZi0hp8ocV4+JRcUnVlQfKP"],
        &[],
    )
    .unwrap();
    let err = verify(&b, &b.entry, &staging).unwrap_err();
    assert!(
        err.message().contains("no signature from a known key"),
        "{err}"
    );
    // The same log name with another key: the signature line's key ID does not match.
    let other = cortex_ed25519::Ed25519Signer::generate("log2025-1.rekor.sigstore.dev").unwrap();
    let err = verify(
        &b,
        &b.entry,
        &RekorTrust::new(&[&other.to_vkey()], &[]).unwrap(),
    )
    .unwrap_err();
    assert!(
        err.message().contains("no signature from a known key"),
        "{err}"
    );
    // The right log, but the entry was not signed by the key we expect.
    let dsse = production_bundle("dsse-v0.0.2.sigstore.json");
    let err = verify_entry(
        &serde_json::to_vec(&b.entry).unwrap(),
        &production_trust(),
        b.artifact,
        Some(&dsse.signer),
    )
    .unwrap_err();
    assert!(err.message().contains("another key"), "{err}");
}

#[test]
fn the_local_rekor_tiles_entry_of_tree_size_one_verifies_with_its_key() {
    let entry =
        std::fs::read(vectors().join("rekor-v2/rekor-local-hashedrekord-tle.extracted.json"))
            .unwrap();
    // The rekor-tiles test key pair: the vkey is the PEM public key in signed-note form.
    let pem = std::fs::read_to_string(
        vectors().join("rekor-v2/rekor-tiles-testdata/pki/ed25519-pub-key.pem"),
    )
    .unwrap();
    let spki = B64
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    assert_eq!(
        log_vkey_from_spki("http://rekor-local", &spki).unwrap(),
        LOCAL_VKEY
    );
    let trust = RekorTrust::new(&[LOCAL_VKEY], &[]).unwrap();
    // The artifact was 128 random bytes (CLIENTS.md); its digest is what the entry records.
    let digest = B64
        .decode("dyj4ednYHjN4/zsjjBeeLahS9slp97Z67LTAVxjrjXw=")
        .unwrap();
    let v = verify_entry(&entry, &trust, Artifact::BlobDigest(&digest), None).unwrap();
    assert_eq!((v.log_index, v.checkpoint.size), (0, 1));
    // Tree size 1: the root is the leaf hash itself.
    assert_eq!(v.checkpoint.root, v.leaf_hash);
    assert_eq!(v.key_details, "PKIX_ECDSA_P256_SHA_256");
    let mut other = digest.clone();
    other[0] ^= 1;
    let err = verify_entry(&entry, &trust, Artifact::BlobDigest(&other), None).unwrap_err();
    assert!(err.message().contains("digest"), "{err}");
    // Its checkpoint does not verify with the production key.
    assert!(
        verify_entry(
            &entry,
            &production_trust(),
            Artifact::BlobDigest(&digest),
            None
        )
        .is_err()
    );
}

#[test]
fn the_nineteen_checkpoint_cases_verify_or_are_rejected_as_expected() {
    let cases = read_json("rekor-v2/checkpoints.extracted.json");
    let cases = cases["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 19);
    let (mut valid, mut rejected, mut not_applicable) = (0, 0, Vec::new());
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let note = case["note"].as_str().unwrap();
        let expect = case["expect"].as_str().unwrap();
        let Some(vkey) = case["vkey"].as_str() else {
            // Rekor v1 signs checkpoints with ECDSA P-256; its signed-note key hint is
            // SHA-256(SPKI)[:4], not a C2SP key ID. CORTEX anchors only to Rekor v2.
            assert_eq!(case["log_key_details"], "PKIX_ECDSA_P256_SHA_256", "{id}");
            not_applicable.push(id.to_owned());
            continue;
        };
        let trust = RekorTrust::new(&[vkey], &WITNESSES).unwrap();
        let result = verify_checkpoint(note, &trust);
        if expect == "valid" {
            let v = result.unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(
                v.checkpoint.origin,
                case["origin"].as_str().unwrap(),
                "{id}"
            );
            assert_eq!(
                v.checkpoint.size,
                case["tree_size"].as_u64().unwrap(),
                "{id}"
            );
            assert_eq!(
                v.checkpoint.root.to_base64(),
                case["root_hash_b64"].as_str().unwrap(),
                "{id}"
            );
            let cosigned = if id == "rekor2-dsse-happy-path" { 3 } else { 0 };
            assert_eq!(v.witnesses.len(), cosigned, "{id}: {:?}", v.witnesses);
            valid += 1;
        } else {
            assert!(result.is_err(), "{id}: accepted, but {expect}");
            rejected += 1;
        }
    }
    assert_eq!((valid, rejected), (11, 5));
    assert_eq!(
        not_applicable,
        [
            "happy-path-v0.3",
            "checkpoint-bad-keyhint_fail",
            "invalid-checkpoint-signature_fail"
        ]
    );
}

#[test]
fn witness_cosignatures_are_counted_and_a_bad_one_rejects_the_checkpoint() {
    let cases = read_json("rekor-v2/checkpoints.extracted.json");
    let case = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "rekor2-dsse-happy-path")
        .unwrap();
    let note = case["note"].as_str().unwrap();
    let vkey = case["vkey"].as_str().unwrap();
    let v = verify_checkpoint(note, &RekorTrust::new(&[vkey], &WITNESSES).unwrap()).unwrap();
    assert_eq!(
        v.witnesses,
        [
            "witness.stagemole.eu",
            "staging.witness.transparency.goog/ring-any-bells",
            "witness.navigli.sunlight.geomys.org"
        ]
    );
    let one =
        verify_checkpoint(note, &RekorTrust::new(&[vkey], &WITNESSES[1..2]).unwrap()).unwrap();
    assert_eq!(one.witnesses, ["witness.stagemole.eu"]);
    // Flip one bit of the stagemole cosignature's Ed25519 part.
    let line = note
        .lines()
        .find(|l| l.contains("witness.stagemole.eu"))
        .unwrap();
    let (prefix, sig) = line.rsplit_once(' ').unwrap();
    let tampered = note.replace(line, &format!("{prefix} {}", b64_flip(sig, 20)));
    let err =
        verify_checkpoint(&tampered, &RekorTrust::new(&[vkey], &WITNESSES).unwrap()).unwrap_err();
    assert!(err.message().contains("witness.stagemole.eu"), "{err}");
    // Without witness keys the tampered cosignature is an unknown signature, ignored.
    assert!(verify_checkpoint(&tampered, &RekorTrust::new(&[vkey], &[]).unwrap()).is_ok());
}

#[test]
fn bad_trust_material_is_refused_with_a_clear_error() {
    let err = RekorTrust::new(&[], &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = RekorTrust::new(&[WITNESSES[0]], &[]).unwrap_err();
    assert!(err.message().contains("not an Ed25519 note key"), "{err}");
    let err = RekorTrust::new(
        &["rekor-local+d80b4421+AURLycjWRo1+gdwwCLg9wU4PayMFdNBmPF4ORVPiBQ1E"],
        &[],
    )
    .unwrap_err();
    assert!(err.message().contains("does not match"), "{err}");
    let trust = RekorTrust::from_text(&format!("# Rekor\n{PROD_VKEY}\nwitness {}\n", WITNESSES[0]))
        .unwrap();
    drop(trust);
    assert!(RekorTrust::from_text("cosigner x+1+2").is_err());
    let err = log_vkey_from_spki("https://x", b"not a key").unwrap_err();
    assert!(err.message().contains("Ed25519"), "{err}");
    let err = verify_entry(b"{}", &production_trust(), Artifact::Blob(ARTIFACT), None).unwrap_err();
    assert!(
        err.message().contains("not a TransparencyLogEntry"),
        "{err}"
    );
}
