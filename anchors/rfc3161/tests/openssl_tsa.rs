//! The anchor against real time-stamping authorities: `openssl ts -reply` behind a loopback
//! HTTP server, certificates made by `openssl` in the test, and `openssl ts -verify` as the
//! independent judge of every token the anchor stores.

mod support;

use cortex_core::testkit::sample_entries;
use cortex_core::{
    Anchor, Checkpoint, ErrorKind, InMemoryStore, Ledger, LedgerOptions, Receipt, SignedNote,
    Submission,
};
use cortex_ed25519::Ed25519Signer;
use cortex_rfc3161::{Rfc3161Anchor, TrustStore};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use support::{Ca, EssCertId, KeyType, TsaIdentity, openssl, serve, serve_tsa, try_openssl};

/// Two unrelated authorities: A (root A, an RSA TSA with ESSCertID and a P-256 TSA with
/// ESSCertIDv2) and B (root B, a P-256 TSA).
struct Pki {
    _dir: tempfile::TempDir,
    root_a: Ca,
    root_b: Ca,
    tsa_rsa: Arc<TsaIdentity>,
    tsa_ec: Arc<TsaIdentity>,
    tsa_b: Arc<TsaIdentity>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root_a = Ca::root(dir.path(), "Root A", KeyType::P384);
        let root_b = Ca::root(dir.path(), "Root B", KeyType::P256);
        let tsa_rsa = TsaIdentity::new(&root_a, "TSA A RSA", KeyType::Rsa, EssCertId::V1Sha1);
        let tsa_ec = TsaIdentity::new(&root_a, "TSA A EC", KeyType::P256, EssCertId::V2Sha256);
        let tsa_b = TsaIdentity::new(&root_b, "TSA B", KeyType::P256, EssCertId::V2Sha256);
        Pki {
            _dir: dir,
            root_a,
            root_b,
            tsa_rsa: Arc::new(tsa_rsa),
            tsa_ec: Arc::new(tsa_ec),
            tsa_b: Arc::new(tsa_b),
        }
    })
}

/// A real ledger with an Ed25519 key and one checkpoint over `entries` entries.
struct SignedCheckpoint {
    ledger: Ledger,
    note: String,
    checkpoint: Checkpoint,
}

fn signed_checkpoint(entries: usize) -> SignedCheckpoint {
    let store = Arc::new(InMemoryStore::new());
    let mut ledger = Ledger::open(
        store,
        LedgerOptions {
            hasher: None,
            checkpoint_every: 0,
        },
    )
    .unwrap();
    ledger
        .add_signer(Arc::new(
            Ed25519Signer::generate("example.com/rfc3161-test").unwrap(),
        ))
        .unwrap();
    ledger.append(&sample_entries(entries)).unwrap();
    let note = ledger.checkpoint().unwrap().record.note;
    let body = SignedNote::parse(note.as_bytes()).unwrap().text;
    let checkpoint = Checkpoint::parse(&body).unwrap();
    SignedCheckpoint {
        ledger,
        note,
        checkpoint,
    }
}

impl SignedCheckpoint {
    fn submission(&self) -> Submission<'_> {
        Submission {
            note: &self.note,
            checkpoint: &self.checkpoint,
            proofs: &self.ledger,
        }
    }
}

fn trust_a() -> TrustStore {
    TrustStore::from_files(&[pki().root_a.cert_path()]).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn anchor_receipt(url: &str, trust: TrustStore, cp: &SignedCheckpoint) -> Receipt {
    let anchor = Rfc3161Anchor::new(url, trust).unwrap();
    runtime().block_on(anchor.submit(cp.submission())).unwrap()
}

fn token_bytes(receipt: &Receipt) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(&receipt.body)
        .unwrap()
}

/// `openssl ts -verify` over the note and the stored token: true when OpenSSL says OK.
fn openssl_accepts(dir: &Path, note: &str, token: &[u8], ca: &Path) -> bool {
    std::fs::write(dir.join("note.txt"), note).unwrap();
    std::fs::write(dir.join("token.der"), token).unwrap();
    let out = try_openssl(
        dir,
        &[
            "ts",
            "-verify",
            "-data",
            "note.txt",
            "-in",
            "token.der",
            "-token_in",
            "-CAfile",
            ca.to_str().unwrap(),
        ],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    out.status.success() && said.contains("Verification: OK")
}

fn anchored_by(tsa: &Arc<TsaIdentity>) {
    let cp = signed_checkpoint(7);
    let url = serve_tsa(tsa.clone(), "granting");
    let anchor = Rfc3161Anchor::new(&url, trust_a()).unwrap();
    let receipt = runtime().block_on(anchor.submit(cp.submission())).unwrap();
    assert_eq!(receipt.anchor, "rfc3161");
    assert_eq!(receipt.target, url);
    anchor.verify_receipt(&cp.note, &receipt).unwrap();
    let timestamp = anchor
        .verify_body(cp.note.as_bytes(), &receipt.body)
        .unwrap();
    assert_eq!(timestamp.hash_algorithm, "SHA-256");
    assert!(timestamp.signer.contains("TSA A"), "{}", timestamp.signer);
    let age = chrono::Utc::now() - timestamp.gen_time;
    assert!(
        age.num_seconds().abs() < 60,
        "genTime {}",
        timestamp.gen_time
    );

    let dir = tempfile::tempdir().unwrap();
    assert!(
        openssl_accepts(
            dir.path(),
            &cp.note,
            &token_bytes(&receipt),
            &pki().root_a.cert_path()
        ),
        "openssl ts -verify refused the stored token"
    );
    assert!(
        !openssl_accepts(
            dir.path(),
            &format!("{}x", cp.note),
            &token_bytes(&receipt),
            &pki().root_a.cert_path()
        ),
        "openssl ts -verify must refuse the token for other data (the judge is not blind)"
    );
}

#[test]
fn an_rsa_tsa_timestamps_a_checkpoint_and_openssl_accepts_the_stored_token() {
    anchored_by(&pki().tsa_rsa);
}

#[test]
fn a_p256_tsa_with_ess_cert_id_v2_timestamps_a_checkpoint_and_openssl_accepts_it() {
    anchored_by(&pki().tsa_ec);
}

#[test]
fn a_token_over_another_note_is_rejected() {
    let cp = signed_checkpoint(3);
    let other = signed_checkpoint(4);
    let receipt = anchor_receipt(
        &serve_tsa(pki().tsa_rsa.clone(), "granting"),
        trust_a(),
        &cp,
    );
    let anchor = Rfc3161Anchor::new("http://127.0.0.1:9/", trust_a()).unwrap();
    let err = anchor.verify_receipt(&other.note, &receipt).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(err.to_string().contains("covers other data"), "{err}");
}

#[test]
fn a_token_from_another_authority_is_rejected() {
    let cp = signed_checkpoint(3);
    let url_b = serve_tsa(pki().tsa_b.clone(), "granting");
    // Submitting to B while trusting only A fails before anything is stored.
    let anchor = Rfc3161Anchor::new(&url_b, trust_a()).unwrap();
    let err = runtime()
        .block_on(anchor.submit(cp.submission()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(
        err.to_string()
            .contains("does not chain to a configured trust anchor"),
        "{err}"
    );
    // A receipt B made (trusted by B's root) does not verify under A's root either.
    let trust_b = TrustStore::from_files(&[pki().root_b.cert_path()]).unwrap();
    let receipt = anchor_receipt(&url_b, trust_b, &cp);
    let err = Rfc3161Anchor::new(&url_b, trust_a())
        .unwrap()
        .verify_receipt(&cp.note, &receipt)
        .unwrap_err();
    assert!(err.to_string().contains("Root B"), "{err}");
}

#[test]
fn every_flipped_byte_is_rejected_or_changes_nothing_the_token_asserts() {
    let cp = signed_checkpoint(5);
    let receipt = anchor_receipt(&serve_tsa(pki().tsa_ec.clone(), "granting"), trust_a(), &cp);
    let token = token_bytes(&receipt);
    let trust = trust_a();
    let genuine = cortex_rfc3161::verify_token(&token, cp.note.as_bytes(), &trust).unwrap();
    // `openssl ts -reply -chain` embeds a copy of root A, which nothing trusts: flips there
    // may leave the token valid. Everywhere else, a flip must be caught or change nothing.
    let root_copy = find(&token, &der_of_pem(&pki().root_a.cert_pem()));
    let mut accepted_elsewhere = Vec::new();
    for i in 0..token.len() {
        let mut bad = token.clone();
        bad[i] ^= 0x01;
        match cortex_rfc3161::verify_token(&bad, cp.note.as_bytes(), &trust) {
            Err(e) => assert_eq!(e.kind(), ErrorKind::Integrity, "byte {i}: {e}"),
            Ok(ts) => {
                assert_eq!(ts, genuine, "byte {i} changed what the token asserts");
                if !root_copy.contains(&i) {
                    accepted_elsewhere.push(i);
                }
            }
        }
    }
    // The one unauthenticated byte left: the NULL parameter tag of SignedData's unsigned
    // digest-algorithm list (only its OIDs are checked against the SignerInfo).
    assert!(
        accepted_elsewhere.len() <= 1,
        "flips accepted at {accepted_elsewhere:?}"
    );
    // A flip inside the signature value is one of them, with a message that says so.
    let mut bad = token.clone();
    let last = bad.len() - 3;
    bad[last] ^= 0x01;
    let err = cortex_rfc3161::verify_token(&bad, cp.note.as_bytes(), &trust).unwrap_err();
    assert!(err.to_string().contains("signature"), "{err}");
}

#[test]
fn garbage_receipts_are_rejected_with_a_clear_error() {
    let anchor = Rfc3161Anchor::new("http://127.0.0.1:9/", trust_a()).unwrap();
    let receipt = |body: &str| Receipt {
        anchor: "rfc3161".into(),
        target: "http://127.0.0.1:9/".into(),
        body: body.into(),
        created_at: "2026-01-01T00:00:00.000000Z".into(),
    };
    let err = anchor
        .verify_receipt("n\n", &receipt("not base64!"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(err.to_string().contains("not base64"), "{err}");
    let err = anchor
        .verify_receipt("n\n", &receipt("aGVsbG8="))
        .unwrap_err();
    assert!(
        err.to_string().contains("malformed timestamp token"),
        "{err}"
    );
    let mut other_kind = receipt("aGVsbG8=");
    other_kind.anchor = "witness".into();
    let err = anchor.verify_receipt("n\n", &other_kind).unwrap_err();
    assert!(err.to_string().contains("witness"), "{err}");
}

#[test]
fn a_rejection_status_is_an_error_carrying_the_tsa_text() {
    let cp = signed_checkpoint(2);
    // This section accepts only SHA-512 imprints; the anchor sends SHA-256.
    let url = serve_tsa(pki().tsa_rsa.clone(), "sha512_only");
    let anchor = Rfc3161Anchor::new(&url, trust_a()).unwrap();
    let err = runtime()
        .block_on(anchor.submit(cp.submission()))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("TSA refused the request: status 2 (rejection)"),
        "{text}"
    );
    assert!(text.contains("badAlg"), "{text}");
}

#[test]
fn a_replayed_reply_with_another_nonce_is_refused() {
    let cp = signed_checkpoint(2);
    let tsa = pki().tsa_ec.clone();
    let first: std::sync::Mutex<Option<Vec<u8>>> = std::sync::Mutex::new(None);
    // A TSA (or a man in the middle) that answers every query with its first reply.
    let url = serve(move |query| {
        first
            .lock()
            .unwrap()
            .get_or_insert_with(|| tsa.reply(query, "granting"))
            .clone()
    });
    let anchor = Rfc3161Anchor::new(&url, trust_a()).unwrap();
    let rt = runtime();
    rt.block_on(anchor.submit(cp.submission())).unwrap();
    let err = rt.block_on(anchor.submit(cp.submission())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(err.to_string().contains("another nonce"), "{err}");
}

#[test]
fn a_pinned_tsa_certificate_refuses_other_signers_of_the_same_ca() {
    let cp = signed_checkpoint(2);
    let pinned_ec = trust_a().with_pinned_file(&pki().tsa_ec.cert).unwrap();
    let receipt = anchor_receipt(
        &serve_tsa(pki().tsa_ec.clone(), "granting"),
        pinned_ec.clone(),
        &cp,
    );
    let anchor = Rfc3161Anchor::new("http://127.0.0.1:9/", pinned_ec).unwrap();
    anchor.verify_receipt(&cp.note, &receipt).unwrap();
    let rsa_receipt = anchor_receipt(
        &serve_tsa(pki().tsa_rsa.clone(), "granting"),
        trust_a(),
        &cp,
    );
    let err = anchor.verify_receipt(&cp.note, &rsa_receipt).unwrap_err();
    assert!(
        err.to_string().contains("not a pinned TSA certificate"),
        "{err}"
    );
}

#[test]
fn a_token_without_certificates_verifies_only_with_the_pinned_tsa_certificate() {
    let cp = signed_checkpoint(2);
    let tsa = pki().tsa_ec.clone();
    // A TSA that sends no certificate: the query reaches `openssl ts -reply` without certReq.
    let url = serve(move |query| tsa.reply(&without_cert_req(query), "granting"));
    let err = runtime()
        .block_on(
            Rfc3161Anchor::new(&url, trust_a())
                .unwrap()
                .submit(cp.submission()),
        )
        .unwrap_err();
    assert!(err.to_string().contains("signer not found"), "{err}");
    let pinned = trust_a().with_pinned_file(&pki().tsa_ec.cert).unwrap();
    let receipt = anchor_receipt(&url, pinned, &cp);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("note.txt"), &cp.note).unwrap();
    std::fs::write(dir.path().join("token.der"), token_bytes(&receipt)).unwrap();
    openssl(
        dir.path(),
        &[
            "ts",
            "-verify",
            "-data",
            "note.txt",
            "-in",
            "token.der",
            "-token_in",
            "-CAfile",
            pki().root_a.cert_path().to_str().unwrap(),
            "-untrusted",
            pki().tsa_ec.cert.to_str().unwrap(),
        ],
    );
}

/// The DER of the first certificate in a PEM file.
fn der_of_pem(pem: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let text = String::from_utf8_lossy(pem);
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

/// Where `needle` lies in `haystack` (empty if absent).
fn find(haystack: &[u8], needle: &[u8]) -> std::ops::Range<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .map_or(0..0, |at| at..at + needle.len())
}

/// The query with its trailing `certReq BOOLEAN TRUE` (01 01 FF) removed and the outer
/// SEQUENCE length (one byte: the query is short) adjusted.
fn without_cert_req(query: &[u8]) -> Vec<u8> {
    assert!(
        query.ends_with(&[0x01, 0x01, 0xff]) && query[1] < 0x80,
        "{query:02x?}"
    );
    let mut out = query[..query.len() - 3].to_vec();
    out[1] -= 3;
    out
}

#[test]
fn a_substituted_signer_certificate_with_the_same_key_and_serial_is_refused() {
    // A second certificate for TSA A EC's key, issuer and serial, validly signed by root A but
    // not the one the TSA signed with: only the ESS signing-certificate hash tells them apart.
    let tsa = pki().tsa_ec.clone();
    let dir = tempfile::tempdir().unwrap();
    let serial = openssl(
        &tsa.dir,
        &[
            "x509",
            "-in",
            tsa.cert.to_str().unwrap(),
            "-noout",
            "-serial",
        ],
    );
    let serial = String::from_utf8(serial.stdout).unwrap();
    let serial = format!("0x{}", serial.trim().trim_start_matches("serial="));
    let twin = dir.path().join("twin.pem");
    openssl(
        &tsa.dir,
        &[
            "x509",
            "-req",
            "-in",
            "TSA_A_EC.csr",
            "-CA",
            "Root_A.pem",
            "-CAkey",
            "Root_A.key",
            "-set_serial",
            &serial,
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "tsa_cert",
            "-out",
            twin.to_str().unwrap(),
        ],
    );
    let cp = signed_checkpoint(2);
    let url = serve(move |query| tsa.reply(&without_cert_req(query), "granting"));
    let genuine = trust_a().with_pinned_file(&pki().tsa_ec.cert).unwrap();
    let receipt = anchor_receipt(&url, genuine, &cp);
    let twin_pinned = trust_a().with_pinned_file(&twin).unwrap();
    let err = Rfc3161Anchor::new(&url, twin_pinned)
        .unwrap()
        .verify_receipt(&cp.note, &receipt)
        .unwrap_err();
    assert!(
        err.to_string().contains("ESS signing-certificate hash"),
        "{err}"
    );
}

#[test]
fn an_unreachable_tsa_is_unavailable_quickly() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let cp = signed_checkpoint(1);
    let anchor = Rfc3161Anchor::new(&format!("http://127.0.0.1:{port}/"), trust_a()).unwrap();
    let started = Instant::now();
    let err = runtime()
        .block_on(anchor.submit(cp.submission()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_silent_tsa_times_out_as_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let cp = signed_checkpoint(1);
    let anchor = Rfc3161Anchor::new(&url, trust_a())
        .unwrap()
        .with_timeout(Duration::from_millis(300))
        .unwrap();
    let started = Instant::now();
    let err = runtime()
        .block_on(anchor.submit(cp.submission()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(listener);
}

#[test]
fn bad_configuration_is_refused_with_a_clear_error() {
    let err = Rfc3161Anchor::new("not a url", trust_a()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("not a URL"), "{err}");
    // https is there exactly when the crate's `https` feature is on (the binary turns it on).
    let https = Rfc3161Anchor::new("https://tsa.example/", trust_a());
    assert_eq!(https.is_ok(), cfg!(feature = "https"));
    if let Err(err) = https {
        assert!(err.to_string().contains("https is not built in"), "{err}");
    }
    let err = Rfc3161Anchor::new("ftp://tsa.example/", trust_a()).unwrap_err();
    assert!(err.to_string().contains("has scheme \"ftp\""), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = TrustStore::from_files(&[&junk]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("junk.pem"), "{err}");
    let err = TrustStore::from_files(&[dir.path().join("missing.pem")]).unwrap_err();
    assert!(err.to_string().contains("missing.pem"), "{err}");
    let none: [&Path; 0] = [];
    assert!(TrustStore::from_files(&none).is_err());
}
