//! Keyless signing up to the network boundary: Fulcio and Rekor are stand-ins on 127.0.0.1 that
//! record what the signer sends and answer in the services' API shapes.
//!
//! The replies are recorded real material where it exists: the production Fulcio certificate
//! of the conformance suite's `happy-path-v0.3-new-mediaType` bundle with the production Fulcio
//! intermediate and root from the production trusted root (as a Fulcio v2 `signingCert`
//! reply), and that bundle's production Rekor v1 entry (body, integrated time, log ID, index,
//! SET, inclusion proof, checkpoint) as a Rekor v1 `POST /api/v1/log/entries` reply. A real
//! certificate is for another key than the signer's ephemeral one, so the success path uses a
//! certificate issued on the spot by `openssl` (a test CA) for the key the signer sent.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use cortex_core::ErrorKind;
use cortex_sigstore::{KeylessSigner, sign_keyless};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sigstore_verify::crypto::{SigningScheme, verify_signature};
use sigstore_verify::types::{DerPublicKey, SignatureBytes};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EMAIL: &str = "ci@cortex.example";
const CHECKPOINT: &[u8] =
    b"cortex.example/ledger+sha256\n25\nq5fUixtXh6Nl7gmPfbzXkV9P0Hq3Xe0AUhbBw3T3qVg=\n";

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/sigstore-bundles")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// An unsigned JWT with the claims Fulcio reads (the stand-in does not check signatures).
fn token() -> String {
    let header = B64URL.encode(br#"{"alg":"RS256","kid":"test"}"#);
    let claims = json!({
        "iss": "https://oauth2.sigstore.dev/auth",
        "sub": "cortex-test-subject",
        "aud": "sigstore",
        "exp": 4_102_444_800u64,
        "iat": 1_700_000_000u64,
        "email": EMAIL,
        "email_verified": true,
    });
    format!("{header}.{}.c2ln", B64URL.encode(claims.to_string()))
}

fn pem(label: &str, der: &[u8]) -> String {
    let body: Vec<String> = B64
        .encode(der)
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.join("\n")
    )
}

/// The recorded production Fulcio chain: leaf from the conformance bundle, intermediate and
/// root from the production trusted root.
fn recorded_fulcio_chain() -> Vec<String> {
    let v = vectors();
    let bundle = read_json(&v.join(
        "sigstore-conformance/bundle-verify/happy-path-v0.3-new-mediaType/bundle.sigstore.json",
    ));
    let leaf = bundle["verificationMaterial"]["certificate"]["rawBytes"]
        .as_str()
        .unwrap();
    let root = read_json(&v.join("trusted_root.production.json"));
    let ca = root["certificateAuthorities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ca| ca["validFor"]["end"].is_null())
        .expect("a current Fulcio CA");
    let mut chain = vec![pem("CERTIFICATE", &B64.decode(leaf).unwrap())];
    for cert in ca["certChain"]["certificates"].as_array().unwrap() {
        chain.push(pem(
            "CERTIFICATE",
            &B64.decode(cert["rawBytes"].as_str().unwrap()).unwrap(),
        ));
    }
    chain
}

/// The recorded production Rekor v1 entry, as `POST /api/v1/log/entries` returns it.
fn recorded_rekor_reply() -> Value {
    let bundle = read_json(&vectors().join(
        "sigstore-conformance/bundle-verify/happy-path-v0.3-new-mediaType/bundle.sigstore.json",
    ));
    let e = &bundle["verificationMaterial"]["tlogEntries"][0];
    let to_hex = |b64: &Value| hex::encode(B64.decode(b64.as_str().unwrap()).unwrap());
    let num = |v: &Value| v.as_str().unwrap().parse::<u64>().unwrap();
    let p = &e["inclusionProof"];
    let entry = json!({
        "body": e["canonicalizedBody"],
        "integratedTime": num(&e["integratedTime"]),
        "logID": to_hex(&e["logId"]["keyId"]),
        "logIndex": num(&e["logIndex"]),
        "verification": {
            "inclusionProof": {
                "checkpoint": p["checkpoint"]["envelope"],
                "hashes": p["hashes"].as_array().unwrap().iter().map(to_hex).collect::<Vec<_>>(),
                "logIndex": num(&p["logIndex"]),
                "rootHash": to_hex(&p["rootHash"]),
                "treeSize": num(&p["treeSize"]),
            },
            "signedEntryTimestamp": e["inclusionPromise"]["signedEntryTimestamp"],
        }
    });
    json!({ "108e9186e8c5677a6f1d8bf36a4a0fa6c9b2d4a2f1cbe7f08c9d8c4c3b5a8f2e1d": entry })
}

/// How the Fulcio stand-in answers.
#[derive(Clone, Copy)]
enum Fulcio {
    /// The recorded production chain (a certificate for someone else's key).
    Recorded,
    /// A certificate for the posted key, issued by a test CA with `openssl`.
    IssueWithOpenssl,
}

#[derive(Clone)]
struct StandIn {
    fulcio: Fulcio,
    dir: Arc<tempfile::TempDir>,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn fulcio_signing_cert(State(s): State<StandIn>, body: String) -> (StatusCode, String) {
    let request: Value = serde_json::from_str(&body).unwrap();
    s.requests
        .lock()
        .unwrap()
        .push(("fulcio".into(), request.clone()));
    let chain = match s.fulcio {
        Fulcio::Recorded => recorded_fulcio_chain(),
        Fulcio::IssueWithOpenssl => {
            let key = request["publicKeyRequest"]["publicKey"]["content"]
                .as_str()
                .unwrap();
            issue_with_openssl(s.dir.path(), key)
        }
    };
    let reply = json!({ "signedCertificateEmbeddedSct": { "chain": { "certificates": chain } } });
    (StatusCode::CREATED, reply.to_string())
}

async fn rekor_entries(State(s): State<StandIn>, body: String) -> (StatusCode, String) {
    s.requests
        .lock()
        .unwrap()
        .push(("rekor".into(), serde_json::from_str(&body).unwrap()));
    (StatusCode::CREATED, recorded_rekor_reply().to_string())
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl binary is needed (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Fulcio-shaped certificate for `public_key_pem`: SAN email, code-signing EKU, OIDC issuer
/// extension; returns [leaf, CA] PEMs.
fn issue_with_openssl(dir: &Path, public_key_pem: &str) -> Vec<String> {
    if !dir.join("ca.pem").exists() {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/O=cortex-test/CN=test-fulcio",
                "-days",
                "1",
            ],
        );
    }
    std::fs::write(dir.join("leaf.pub"), public_key_pem).unwrap();
    std::fs::write(
        dir.join("leaf.ext"),
        format!(
            "subjectAltName=critical,email:{EMAIL}\nextendedKeyUsage=codeSigning\n\
             keyUsage=critical,digitalSignature\n\
             1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:https://oauth2.sigstore.dev/auth\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-new",
            "-force_pubkey",
            "leaf.pub",
            "-subj",
            "/O=sigstore.dev",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-extfile",
            "leaf.ext",
            "-days",
            "1",
            "-out",
            "leaf.pem",
        ],
    );
    vec![
        std::fs::read_to_string(dir.join("leaf.pem")).unwrap(),
        std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
    ]
}

/// Starts the stand-in on 127.0.0.1:0; returns its base URL and the request log.
async fn stand_in(fulcio: Fulcio) -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
    let state = StandIn {
        fulcio,
        dir: Arc::new(tempfile::tempdir().unwrap()),
        requests: Arc::default(),
    };
    let requests = state.requests.clone();
    let app = Router::new()
        .route("/api/v2/signingCert", post(fulcio_signing_cert))
        .route("/api/v1/log/entries", post(rekor_entries))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, requests)
}

fn der_of_pem(text: &str) -> Vec<u8> {
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    B64.decode(b64).unwrap()
}

/// Asserts the Fulcio request's shape: the token, a P-256 public key PEM, and a proof of
/// possession that verifies over the token's email with that key. Returns the key.
fn assert_fulcio_request(request: &Value) -> DerPublicKey {
    assert_eq!(request["credentials"]["oidcIdentityToken"], token());
    let key_pem = request["publicKeyRequest"]["publicKey"]["content"]
        .as_str()
        .unwrap();
    assert!(
        key_pem.starts_with("-----BEGIN PUBLIC KEY-----"),
        "{key_pem}"
    );
    let key = DerPublicKey::new(der_of_pem(key_pem));
    let pop = B64
        .decode(
            request["publicKeyRequest"]["proofOfPossession"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    verify_signature(
        &key,
        EMAIL.as_bytes(),
        &SignatureBytes::new(pop),
        SigningScheme::EcdsaP256Sha256,
    )
    .expect("the proof of possession is the key's signature over the token's email");
    key
}

/// Asserts the Rekor request is a hashedrekord 0.0.1 of SHA-256(message), a signature by
/// `key` over the message, and the certificate Fulcio returned.
fn assert_rekor_request(request: &Value, key: &DerPublicKey, leaf_pem: &str) {
    assert_eq!(request["kind"], "hashedrekord");
    assert_eq!(request["apiVersion"], "0.0.1");
    let spec = &request["spec"];
    assert_eq!(spec["data"]["hash"]["algorithm"], "sha256");
    assert_eq!(
        spec["data"]["hash"]["value"],
        hex::encode(Sha256::digest(CHECKPOINT))
    );
    let sig = B64
        .decode(spec["signature"]["content"].as_str().unwrap())
        .unwrap();
    verify_signature(
        key,
        CHECKPOINT,
        &SignatureBytes::new(sig),
        SigningScheme::EcdsaP256Sha256,
    )
    .expect("the logged signature is over the message with the certified key");
    let cert = B64
        .decode(spec["signature"]["publicKey"]["content"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        der_of_pem(std::str::from_utf8(&cert).unwrap()),
        der_of_pem(leaf_pem)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_signing_sends_fulcio_and_rekor_requests_of_the_right_shape_and_builds_the_bundle()
{
    let (url, requests) = stand_in(Fulcio::IssueWithOpenssl).await;
    let bundle = sign_keyless(&url, &url, &token(), CHECKPOINT)
        .await
        .unwrap();

    let requests = requests.lock().unwrap().clone();
    let paths: Vec<&str> = requests.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        ["fulcio", "rekor"],
        "one certificate request, then one log entry"
    );
    let key = assert_fulcio_request(&requests[0].1);

    let bundle: Value = serde_json::from_slice(&bundle).unwrap();
    assert_eq!(
        bundle["mediaType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    let leaf = B64
        .decode(
            bundle["verificationMaterial"]["certificate"]["rawBytes"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert_rekor_request(&requests[1].1, &key, &pem("CERTIFICATE", &leaf));
    let digest = &bundle["messageSignature"]["messageDigest"];
    assert_eq!(digest["algorithm"], "SHA2_256");
    assert_eq!(digest["digest"], B64.encode(Sha256::digest(CHECKPOINT)));
    let entry = &bundle["verificationMaterial"]["tlogEntries"][0];
    let recorded = read_json(&vectors().join(
        "sigstore-conformance/bundle-verify/happy-path-v0.3-new-mediaType/bundle.sigstore.json",
    ));
    let recorded = &recorded["verificationMaterial"]["tlogEntries"][0];
    for field in [
        "logIndex",
        "logId",
        "integratedTime",
        "inclusionPromise",
        "inclusionProof",
        "canonicalizedBody",
    ] {
        assert_eq!(
            entry[field], recorded[field],
            "the Rekor reply's {field} is carried into the bundle"
        );
    }
    assert_eq!(
        entry["kindVersion"],
        json!({"kind": "hashedrekord", "version": "0.0.1"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fulcio_certificate_for_another_key_is_refused() {
    let (url, requests) = stand_in(Fulcio::Recorded).await;
    let err = sign_keyless(&url, &url, &token(), CHECKPOINT)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(
        err.to_string()
            .contains("another public key than the one that signed"),
        "{err}"
    );
    let requests = requests.lock().unwrap().clone();
    let key = assert_fulcio_request(&requests[0].1);
    assert_rekor_request(&requests[1].1, &key, &recorded_fulcio_chain()[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_slow_and_misconfigured_services_get_clear_errors() {
    // A port nobody listens on: bind, note the port, close.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let err = sign_keyless(&closed, &closed, &token(), CHECKPOINT)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("Fulcio"), "{err}");

    // A Fulcio that never answers: the timeout ends the call.
    let slow = Router::new().route(
        "/api/v2/signingCert",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            ""
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, slow).await.unwrap() });
    let started = Instant::now();
    let signer = KeylessSigner::new(&slow_url, &slow_url)
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let err = signer.sign(&token(), CHECKPOINT).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");

    let err = KeylessSigner::new("ftp://fulcio.example", &closed).unwrap_err();
    assert!(err.to_string().contains("Fulcio URL"), "{err}");
    let err = KeylessSigner::new(&closed, "not a url").unwrap_err();
    assert!(err.to_string().contains("Rekor URL"), "{err}");
    let err = sign_keyless(&closed, &closed, "not-a-jwt", CHECKPOINT)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("OIDC identity token"), "{err}");
}
