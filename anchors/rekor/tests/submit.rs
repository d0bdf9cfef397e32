//! The submit path against a stand-in for Rekor v2 on 127.0.0.1 (a real rekor-tiles needs
//! Spanner/GCS or a POSIX Tessera stack and cannot run here). The stand-in checks the request as
//! rekor-tiles does (digest = SHA-256 or SHA-512 of the note, signature valid for the key in the
//! request), logs the entry in a 5-leaf RFC 6962 tree and signs the checkpoint with the real
//! rekor-tiles test log key (shared/vectors/rekor-v2/rekor-tiles-testdata/pki).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cortex_core::ledger::merkle::{LeafSlice, inclusion_proof, root_from_leaves};
use cortex_core::ledger::note::NoteSignature;
use cortex_core::{
    Anchor, Checkpoint, ConsistencyProver, ErrorKind, Hash, Hasher, Receipt, Sha256Hasher,
    SignedNote, Signer, Submission,
};
use cortex_ed25519::Ed25519Signer;
use cortex_rekor::{EntrySigningKey, RekorAnchor, RekorTrust, verify_receipt};
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::pkcs8::DecodePublicKey as _;
use serde_json::{Value, json};
use sha2::Digest as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LOCAL_VKEY: &str = "rekor-local+d80b4420+AURLycjWRo1+gdwwCLg9wU4PayMFdNBmPF4ORVPiBQ1E";
const LOCAL_LOG_ID: &str = "2AtEIMfG6Y41yK0tcwRTBS2tjhOrjKGIpDkHFgp65g0=";
const LEAF_INDEX: u64 = 2;

fn vectors() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors");
    assert!(dir.is_dir(), "test vectors not found at {}", dir.display());
    dir
}

/// The rekor-tiles test log key, from its PKCS#8 PEM (the seed is the last 32 bytes).
fn rekor_local_signer() -> Ed25519Signer {
    let pem = std::fs::read_to_string(
        vectors().join("rekor-v2/rekor-tiles-testdata/pki/ed25519-priv-key.pem"),
    )
    .unwrap();
    let der = B64
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let mut raw = vec![0x01];
    raw.extend_from_slice(&der[der.len() - 32..]);
    let signer = Ed25519Signer::from_skey(&format!(
        "PRIVATE+KEY+rekor-local+d80b4420+{}",
        B64.encode(raw)
    ))
    .unwrap();
    assert_eq!(signer.to_vkey(), LOCAL_VKEY);
    signer
}

/// How the stand-in answers.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Reply {
    /// A correct entry for the request.
    Good,
    /// A correct entry for another digest.
    OtherBody,
    /// A correct entry whose inclusion proof has one hash flipped.
    BadProof,
    /// HTTP 400 with a message, as Rekor refuses a bad signature.
    Refuse,
    /// HTTP 503.
    Overloaded,
    /// Never answers.
    Hang,
    /// Answers 201 with 2 MiB.
    Huge,
}

struct StandIn {
    reply: Reply,
    /// The note the test submits: Rekor sees only its digest, but the stand-in checks the
    /// digest is the note's and verifies Ed25519ph signatures with it (dalek verifies
    /// Ed25519ph from the message, not from a digest).
    note: String,
    log: Ed25519Signer,
    requests: Mutex<Vec<Value>>,
}

/// Checks a `hashedRekordRequestV002` as rekor-tiles does, and that it logs `note`; returns the
/// request's parts.
fn check_request(req: &Value, note: &str) -> Result<(Vec<u8>, Value), String> {
    let hr = &req["hashedRekordRequestV002"];
    let text = |v: &Value, what: &str| {
        v.as_str()
            .map(str::to_owned)
            .ok_or(format!("missing {what}"))
    };
    let digest = B64
        .decode(text(&hr["digest"], "digest")?)
        .map_err(|_| "digest not base64")?;
    let sig = B64
        .decode(text(&hr["signature"]["content"], "signature.content")?)
        .map_err(|_| "signature not base64")?;
    let verifier = &hr["signature"]["verifier"];
    let spki = B64
        .decode(text(
            &verifier["publicKey"]["rawBytes"],
            "publicKey.rawBytes",
        )?)
        .map_err(|_| "key not base64")?;
    let algorithm = match text(&verifier["keyDetails"], "keyDetails")?.as_str() {
        "PKIX_ECDSA_P256_SHA_256" => {
            if digest != sha2::Sha256::digest(note.as_bytes()).to_vec() {
                return Err("digest is not SHA-256 of the note".into());
            }
            let key =
                p256::ecdsa::VerifyingKey::from_public_key_der(&spki).map_err(|_| "bad key")?;
            let sig = p256::ecdsa::DerSignature::from_bytes(&sig).map_err(|_| "bad sig")?;
            key.verify_prehash(&digest, &sig)
                .map_err(|_| "verifying signature: invalid")?;
            "SHA2_256"
        }
        "PKIX_ED25519_PH" => {
            let key: [u8; 32] = spki[12..].try_into().map_err(|_| "bad key")?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| "bad key")?;
            let sig = ed25519_dalek::Signature::from_slice(&sig).map_err(|_| "bad sig")?;
            if digest != sha2::Sha512::digest(note.as_bytes()).to_vec() {
                return Err("digest is not SHA-512 of the note".into());
            }
            key.verify_prehashed(
                sha2::Sha512::new().chain_update(note.as_bytes()),
                None,
                &sig,
            )
            .map_err(|_| "verifying signature: invalid Ed25519ph")?;
            "SHA2_512"
        }
        other => return Err(format!("unsupported keyDetails {other}")),
    };
    let data = json!({ "algorithm": algorithm, "digest": B64.encode(&digest) });
    Ok((
        digest,
        json!({ "data": data, "signature": hr["signature"] }),
    ))
}

/// A TransparencyLogEntry for `spec` at index 2 of a 5-leaf tree, with a signed checkpoint.
fn log_entry(log: &Ed25519Signer, spec: &Value, bad_proof: bool) -> Value {
    // serde_json's maps are sorted: compact output is the canonical JSON Rekor stores.
    let body = serde_json::to_vec(&json!({
        "apiVersion": "0.0.2", "kind": "hashedrekord", "spec": { "hashedRekordV002": spec }
    }))
    .unwrap();
    let h = Sha256Hasher;
    let mut leaves: Vec<Hash> = (0..5)
        .map(|i| h.leaf(format!("entry {i}").as_bytes()))
        .collect();
    leaves[LEAF_INDEX as usize] = h.leaf(&body);
    let root = root_from_leaves(&h, &leaves);
    let mut proof = inclusion_proof(
        &LeafSlice {
            hasher: &h,
            leaves: &leaves,
        },
        &h,
        LEAF_INDEX,
        5,
    )
    .unwrap();
    if bad_proof {
        proof[1].0[0] ^= 1;
    }
    let text = Checkpoint {
        origin: "rekor-local".into(),
        size: 5,
        root,
        extensions: vec![],
    }
    .to_text();
    let mut note = SignedNote::new(text.clone()).unwrap();
    note.signatures.push(NoteSignature {
        name: "rekor-local".into(),
        key_id: log.note_key_id().unwrap(),
        signature: log.sign(text.as_bytes()).unwrap(),
    });
    json!({
        "logIndex": LEAF_INDEX.to_string(),
        "logId": { "keyId": LOCAL_LOG_ID },
        "kindVersion": { "kind": "hashedrekord", "version": "0.0.2" },
        "integratedTime": "0",
        "inclusionProof": {
            "logIndex": LEAF_INDEX.to_string(),
            "rootHash": root.to_base64(),
            "treeSize": "5",
            "hashes": proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
            "checkpoint": { "envelope": note.to_text() },
        },
        "canonicalizedBody": B64.encode(&body),
    })
}

async fn create_entry(State(s): State<Arc<StandIn>>, Json(req): Json<Value>) -> Response {
    s.requests.lock().unwrap().push(req.clone());
    let (_, mut spec) = match check_request(&req, &s.note) {
        Ok(parts) => parts,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    match s.reply {
        Reply::Refuse => {
            return (
                StatusCode::BAD_REQUEST,
                "verifying signature: invalid signature",
            )
                .into_response();
        }
        Reply::Overloaded => return (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response(),
        Reply::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
        Reply::Huge => return (StatusCode::CREATED, "x".repeat(2 << 20)).into_response(),
        Reply::OtherBody => {
            spec["data"]["digest"] =
                Value::String(B64.encode(sha2::Sha256::digest(b"another note")));
        }
        Reply::Good | Reply::BadProof => {}
    }
    (
        StatusCode::CREATED,
        Json(log_entry(&s.log, &spec, s.reply == Reply::BadProof)),
    )
        .into_response()
}

async fn stand_in(reply: Reply, note: &str) -> (String, Arc<StandIn>) {
    let state = Arc::new(StandIn {
        reply,
        note: note.to_owned(),
        log: rekor_local_signer(),
        requests: Mutex::new(vec![]),
    });
    let app = axum::Router::new()
        .route("/api/v2/log/entries", axum::routing::post(create_entry))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

struct NoProofs;
impl ConsistencyProver for NoProofs {
    fn consistency_proof(&self, _: u64, _: u64) -> cortex_core::Result<Vec<Hash>> {
        Ok(vec![])
    }
}

/// A CORTEX checkpoint note, signed by a fresh ledger key.
fn ledger_note() -> (String, Checkpoint) {
    let cp = Checkpoint {
        origin: "example.com/ledger".into(),
        size: 1000,
        root: Sha256Hasher.leaf(b"ledger root"),
        extensions: vec![],
    };
    let signer = Ed25519Signer::generate(&cp.origin).unwrap();
    let mut note = SignedNote::new(cp.to_text()).unwrap();
    note.signatures.push(NoteSignature {
        name: cp.origin.clone(),
        key_id: signer.note_key_id().unwrap(),
        signature: signer.sign(cp.to_text().as_bytes()).unwrap(),
    });
    (note.to_text(), cp)
}

fn anchor(url: &str, key: EntrySigningKey) -> RekorAnchor {
    let trust = RekorTrust::new(&[LOCAL_VKEY], &[]).unwrap();
    RekorAnchor::with_timeout(url, trust, key, Duration::from_secs(2)).unwrap()
}

async fn submit(anchor: &RekorAnchor, note: &str, cp: &Checkpoint) -> cortex_core::Result<Receipt> {
    anchor
        .submit(Submission {
            note,
            checkpoint: cp,
            proofs: &NoProofs,
        })
        .await
}

#[tokio::test]
async fn a_submitted_note_comes_back_as_a_receipt_that_verifies_offline() {
    for key in [EntrySigningKey::generate().unwrap(), ed25519_entry_key()] {
        let details = key.key_details();
        let spki = key.public_key_der();
        let (note, cp) = ledger_note();
        let (url, server) = stand_in(Reply::Good, &note).await;
        let anchor = anchor(&url, key);
        let receipt = submit(&anchor, &note, &cp)
            .await
            .unwrap_or_else(|e| panic!("{details}: {e}"));
        assert_eq!(
            (receipt.anchor.as_str(), receipt.target.as_str()),
            ("rekor", url.as_str())
        );
        // What the stand-in received: the digest of the whole signed note, and our key.
        let req = server.requests.lock().unwrap()[0].clone();
        let hr = &req["hashedRekordRequestV002"];
        let expected_digest = match details {
            "PKIX_ECDSA_P256_SHA_256" => sha2::Sha256::digest(note.as_bytes()).to_vec(),
            _ => sha2::Sha512::digest(note.as_bytes()).to_vec(),
        };
        assert_eq!(hr["digest"], B64.encode(expected_digest), "{details}");
        assert_eq!(
            hr["signature"]["verifier"]["publicKey"]["rawBytes"],
            B64.encode(&spki)
        );
        // The receipt is the entry itself and verifies offline, with or without the anchor.
        let entry: Value = serde_json::from_str(&receipt.body).unwrap();
        assert_eq!(entry["logIndex"], "2");
        anchor.verify_receipt(&note, &receipt).unwrap();
        let trust = RekorTrust::new(&[LOCAL_VKEY], &[]).unwrap();
        let v = verify_receipt(&note, &receipt, &trust, Some(&spki)).unwrap();
        assert_eq!(
            (v.log_index, v.checkpoint.size, v.key_details.as_str()),
            (2, 5, details)
        );
        // Another note, or an edited receipt, does not verify.
        let (other, _) = ledger_note();
        assert!(
            anchor.verify_receipt(&other, &receipt).is_err(),
            "{details}"
        );
        let mut edited = receipt.clone();
        edited.body = edited
            .body
            .replace("\"logIndex\":\"2\"", "\"logIndex\":\"3\"");
        assert_ne!(edited.body, receipt.body);
        assert!(anchor.verify_receipt(&note, &edited).is_err(), "{details}");
        let mut wrong_kind = receipt.clone();
        wrong_kind.anchor = "witness".into();
        assert!(anchor.verify_receipt(&note, &wrong_kind).is_err());
        // An auditor's anchor holds no entry key: it checks the same receipt, refuses the
        // edited one, and cannot submit.
        let checker =
            RekorAnchor::checker(&url, RekorTrust::new(&[LOCAL_VKEY], &[]).unwrap()).unwrap();
        checker.verify_receipt(&note, &receipt).unwrap();
        assert!(checker.verify_receipt(&note, &edited).is_err());
        assert!(checker.verify_receipt(&other, &receipt).is_err());
        let e = submit(&checker, &note, &cp).await.unwrap_err();
        assert!(e.to_string().contains("check receipts only"), "{e}");
    }
}

fn ed25519_entry_key() -> EntrySigningKey {
    ed25519_key_from_seed(&[7u8; 32])
}

/// An Ed25519 PKCS#8 PEM key (RFC 8410) with this seed.
fn ed25519_key_from_seed(seed: &[u8]) -> EntrySigningKey {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        B64.encode(der)
    );
    let key = EntrySigningKey::from_pkcs8_pem(&pem).unwrap();
    assert_eq!(key.key_details(), "PKIX_ED25519_PH");
    key
}

#[test]
fn ed25519_entries_are_signed_as_rfc_8032_ed25519ph() {
    // RFC 8032 section 7.3, the Ed25519ph test vector "abc".
    let hex = |s: &str| {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    let key = ed25519_key_from_seed(&hex(
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
    ));
    let req = key.hashedrekord_request(b"abc").unwrap();
    let hr = &req["hashedRekordRequestV002"];
    assert_eq!(
        hr["signature"]["content"],
        B64.encode(hex(
            "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41\
                        31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
        ))
    );
    assert_eq!(hr["digest"], B64.encode(sha2::Sha512::digest(b"abc")));
    let mut spki = hex("302a300506032b6570032100");
    spki.extend(hex(
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
    ));
    assert_eq!(
        hr["signature"]["verifier"]["publicKey"]["rawBytes"],
        B64.encode(spki)
    );
}

#[tokio::test]
async fn wrong_replies_are_refused_and_named() {
    let (note, cp) = ledger_note();
    for (reply, kind, words) in [
        (
            Reply::OtherBody,
            ErrorKind::Integrity,
            &["does not verify", "digest"][..],
        ),
        (
            Reply::BadProof,
            ErrorKind::Integrity,
            &["does not verify", "inclusion proof"],
        ),
        (
            Reply::Refuse,
            ErrorKind::Backend,
            &["HTTP 400", "invalid signature"],
        ),
        (
            Reply::Overloaded,
            ErrorKind::Unavailable,
            &["HTTP 503", "try later"],
        ),
        (
            Reply::Huge,
            ErrorKind::Backend,
            &["larger than 1048576 bytes"],
        ),
    ] {
        let (url, _) = stand_in(reply, &note).await;
        let err = submit(
            &anchor(&url, EntrySigningKey::generate().unwrap()),
            &note,
            &cp,
        )
        .await
        .expect_err(&format!("{reply:?} was accepted"));
        assert_eq!(err.kind(), kind, "{reply:?}: {err}");
        for w in words {
            assert!(err.message().contains(w), "{reply:?}: {err}");
        }
    }
}

#[tokio::test]
async fn an_unreachable_or_silent_rekor_is_unavailable_within_the_timeout() {
    let (note, cp) = ledger_note();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = submit(
        &anchor(&closed, EntrySigningKey::generate().unwrap()),
        &note,
        &cp,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("unreachable"), "{err}");

    let (url, _) = stand_in(Reply::Hang, &note).await;
    let started = Instant::now();
    let err = submit(
        &anchor(&url, EntrySigningKey::generate().unwrap()),
        &note,
        &cp,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn bad_urls_are_configuration_errors() {
    for (url, word) in [
        ("not a url", "not a URL"),
        ("ftp://rekor.example", "scheme"),
        ("https://log2025-1.rekor.sigstore.dev", "https"),
        ("http://rekor.example/?q=1", "no query"),
    ] {
        if url.starts_with("https") && cfg!(feature = "https") {
            continue;
        }
        let trust = RekorTrust::new(&[LOCAL_VKEY], &[]).unwrap();
        let err = RekorAnchor::new(url, trust, EntrySigningKey::generate().unwrap()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}: {err}");
        assert!(err.message().contains(word), "{url}: {err}");
    }
}

fn openssl(args: &[&str]) -> std::process::Output {
    std::process::Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("the openssl binary is needed for this test: {e}"))
}

#[test]
fn signing_keys_are_pkcs8_pem_files_that_openssl_reads_and_checks() {
    let dir = tempfile::tempdir().unwrap();
    // A key openssl generated is read, and signs what openssl verifies.
    let path = dir.path().join("openssl.pem");
    let out = openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = EntrySigningKey::read_file(&path).unwrap();
    let artifact = dir.path().join("note.txt");
    std::fs::write(&artifact, "example.com/ledger\n1\nAAAA\n").unwrap();
    let req = key
        .hashedrekord_request(&std::fs::read(&artifact).unwrap())
        .unwrap();
    let sig = B64
        .decode(
            req["hashedRekordRequestV002"]["signature"]["content"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    std::fs::write(dir.path().join("note.sig"), sig).unwrap();
    let pubkey = dir.path().join("pub.pem");
    assert!(
        openssl(&[
            "pkey",
            "-in",
            path.to_str().unwrap(),
            "-pubout",
            "-out",
            pubkey.to_str().unwrap()
        ])
        .status
        .success()
    );
    let out = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        pubkey.to_str().unwrap(),
        "-signature",
        dir.path().join("note.sig").to_str().unwrap(),
        artifact.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The public key in the request is the one openssl derives.
    let out = openssl(&[
        "pkey",
        "-in",
        path.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    assert_eq!(
        req["hashedRekordRequestV002"]["signature"]["verifier"]["publicKey"]["rawBytes"],
        B64.encode(out.stdout)
    );

    // A generated key is written once (0600), read back, and openssl parses it.
    let ours = dir.path().join("rekor.pem");
    let generated = EntrySigningKey::generate().unwrap();
    generated.write_new_file(&ours).unwrap();
    assert_eq!(
        EntrySigningKey::read_file(&ours).unwrap().public_key_der(),
        generated.public_key_der()
    );
    assert!(
        openssl(&["pkey", "-in", ours.to_str().unwrap(), "-noout"])
            .status
            .success()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&ours).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let err = generated.write_new_file(&ours).unwrap_err();
    assert!(err.message().contains("rekor.pem"), "{err}");

    // Bad files are named.
    let rsa = dir.path().join("rsa.pem");
    assert!(
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            rsa.to_str().unwrap()
        ])
        .status
        .success()
    );
    let err = EntrySigningKey::read_file(&rsa).unwrap_err();
    assert!(
        err.message()
            .contains("neither an ECDSA P-256 nor an Ed25519"),
        "{err}"
    );
    assert!(
        format!("{err:?}").contains("rsa.pem") || err.to_string().contains("rsa.pem"),
        "{err}"
    );
    let err = EntrySigningKey::read_file(&dir.path().join("missing.pem")).unwrap_err();
    assert!(err.message().contains("missing.pem"), "{err}");
    assert!(!format!("{generated:?}").contains("PRIVATE"));
}

#[test]
fn a_checkpoint_the_log_key_signed_for_another_origin_is_rejected() {
    let log = rekor_local_signer();
    let trust = RekorTrust::new(&[LOCAL_VKEY], &[]).unwrap();
    let sign = |origin: &str| {
        let text = Checkpoint {
            origin: origin.into(),
            size: 1,
            root: Sha256Hasher.leaf(b"x"),
            extensions: vec![],
        }
        .to_text();
        let mut note = SignedNote::new(text.clone()).unwrap();
        note.signatures.push(NoteSignature {
            name: "rekor-local".into(),
            key_id: log.note_key_id().unwrap(),
            signature: log.sign(text.as_bytes()).unwrap(),
        });
        note.to_text()
    };
    assert!(cortex_rekor::verify_checkpoint(&sign("rekor-local"), &trust).is_ok());
    let err = cortex_rekor::verify_checkpoint(&sign("rekor-other"), &trust).unwrap_err();
    assert!(err.message().contains("origin"), "{err}");
}
