//! Key-based bundles: keys from files (ours and `openssl`'s), the round trip through core's
//! ledger, the checks a tampered body, key or bundle fails, and `openssl` verifying the
//! signatures CORTEX writes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cortex_core::testkit::tamper::test_signer;
use cortex_core::testkit::{sample_entries, signer_conformance};
use cortex_core::{
    ErrorKind, InMemoryStore, Ledger, LedgerOptions, LedgerStore, SignatureScheme, Signer,
    Verifier, VerifyOptions, verify_store,
};
use cortex_sigstore::{KeyAlgorithm, SigstoreSigner, SigstoreVerifier, key_hint, public_key_path};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const ALGORITHMS: [KeyAlgorithm; 2] = [KeyAlgorithm::EcdsaP256Sha256, KeyAlgorithm::Ed25519];

/// A real checkpoint body: Tessera's test log at size 15 (the note text before the blank line).
fn checkpoint_body() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors/tessera-testdata-log/testdata/log/checkpoint");
    let note = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (body, _sigs) = note.split_once("\n\n").expect("a signed note");
    format!("{body}\n").into_bytes()
}

fn openssl(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl binary is needed (Debian package openssl)")
}

fn openssl_ok(dir: &Path, args: &[&str]) {
    let out = openssl(dir, args);
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn signature_of(bundle: &[u8]) -> Vec<u8> {
    let v: Value = serde_json::from_slice(bundle).unwrap();
    B64.decode(v["messageSignature"]["signature"].as_str().unwrap())
        .unwrap()
}

#[test]
fn ledger_checkpoints_carry_bundles_that_verify_with_both_key_types() {
    for alg in ALGORITHMS {
        let signer = Arc::new(SigstoreSigner::random(alg).unwrap());
        assert_eq!(signer.scheme(), SignatureScheme::SigstoreBundle);
        assert_eq!(signer.note_key_id(), None);
        signer_conformance(&*signer);

        // A ledger signs its checkpoints with its note key and, detached, with the Sigstore key.
        let store = Arc::new(InMemoryStore::new());
        let mut ledger = Ledger::open(store.clone(), LedgerOptions::default()).unwrap();
        let note_signer = test_signer("example.com/sigstore");
        ledger.add_signer(note_signer.clone()).unwrap();
        ledger.add_signer(signer.clone()).unwrap();
        ledger.append(&sample_entries(7)).unwrap();
        assert!(ledger.checkpoint().unwrap().created);
        let cp = store.latest_checkpoint().unwrap().unwrap();
        let stored = cp
            .extra_signatures
            .iter()
            .find(|s| s.scheme == "sigstore-bundle")
            .expect("the checkpoint stores the Sigstore bundle");
        assert_eq!(stored.key_name, signer.key_name());
        let body = format!("{}\n", cp.note.split_once("\n\n").unwrap().0);
        assert!(body.starts_with("example.com/sigstore\n7\n"), "{body}");
        signer
            .verifier()
            .verify(body.as_bytes(), stored.signature.as_bytes())
            .unwrap();

        let verify = |verifiers: Vec<Box<dyn Verifier>>| {
            let opts = VerifyOptions {
                verifiers,
                ..Default::default()
            };
            verify_store(&*store, ledger.hasher(), ledger.origin(), &opts).unwrap()
        };
        let report = verify(vec![note_signer.verifier(), signer.verifier()]);
        assert!(report.valid, "{:?}", report.violations);
    }
}

#[test]
fn a_bundle_over_a_real_checkpoint_has_the_documented_shape_and_verifies() {
    let body = checkpoint_body();
    for alg in ALGORITHMS {
        let signer = SigstoreSigner::random(alg).unwrap();
        let bundle = signer.sign(&body).unwrap();
        let v: Value = serde_json::from_slice(&bundle).unwrap();
        assert_eq!(
            v["mediaType"],
            "application/vnd.dev.sigstore.bundle.v0.3+json"
        );
        assert_eq!(
            v["verificationMaterial"]["publicKey"]["hint"],
            signer.key_name()
        );
        assert_eq!(
            v["messageSignature"]["messageDigest"]["algorithm"],
            "SHA2_256"
        );
        assert!(
            v["verificationMaterial"]
                .get("tlogEntries")
                .is_none_or(|t| t.as_array().is_some_and(Vec::is_empty))
        );
        let verifier = SigstoreVerifier::from_pem(&signer.public_key_pem()).unwrap();
        assert_eq!(verifier.key_name(), signer.key_name());
        verifier.verify(&body, &bundle).unwrap();
    }
}

#[test]
fn altered_body_other_key_and_edited_bundles_are_rejected_with_the_reason() {
    let body = checkpoint_body();
    let signer = SigstoreSigner::random(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let verifier = signer.verifier();
    let bundle = signer.sign(&body).unwrap();
    let reject = |message: &[u8], bundle: &[u8], needle: &str| {
        let err = verifier.verify(message, bundle).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
        assert!(
            err.to_string().contains(needle),
            "expected {needle:?} in: {err}"
        );
    };

    let mut altered = body.clone();
    altered[body.len() - 3] ^= 1;
    reject(
        &altered,
        &bundle,
        "messageDigest is not the SHA-256 of the checkpoint body",
    );

    let other = SigstoreSigner::random(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let err = other.verifier().verify(&body, &bundle).unwrap_err();
    assert!(err.to_string().contains("it names key"), "{err}");

    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_slice(&bundle).unwrap();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    // A valid signature of another body, with the digest set to this body's: only the
    // signature check catches it.
    let forged = edit(&|v| {
        let sig = B64.encode(signature_of(&signer.sign(b"another body\n").unwrap()));
        v["messageSignature"]["signature"] = sig.into();
    });
    reject(&body, &forged, "signature does not verify");
    let hint = edit(&|v| v["verificationMaterial"]["publicKey"]["hint"] = other.key_name().into());
    reject(&body, &hint, "it names key");
    let old =
        edit(&|v| v["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2".into());
    reject(&body, &old, "media type");
    let nodigest = edit(&|v| {
        v["messageSignature"]
            .as_object_mut()
            .unwrap()
            .retain(|k, _| k != "messageDigest")
    });
    reject(&body, &nodigest, "no messageDigest");
    reject(&body, b"{\"mediaType\": 1", "not a Sigstore bundle JSON");
    reject(&body, &[0xff, 0xfe], "not UTF-8");
    let keyless = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../../shared/vectors/sigstore-bundles/sigstore-conformance/bundle-verify/happy-path-v0.3-new-mediaType/bundle.sigstore.json",
    ))
    .unwrap();
    reject(&body, &keyless, "carries a certificate");
}

#[test]
fn generated_key_files_are_private_reloadable_and_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    for alg in ALGORITHMS {
        let path = dir.path().join(format!("{alg:?}.key"));
        let made = SigstoreSigner::generate(&path, alg).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{text}");
        let loaded = SigstoreSigner::from_file(&path).unwrap();
        assert_eq!(
            (loaded.key_name(), loaded.algorithm()),
            (made.key_name(), alg)
        );
        let public = SigstoreVerifier::from_file(&public_key_path(&path)).unwrap();
        public
            .verify(b"body\n", &loaded.sign(b"body\n").unwrap())
            .unwrap();

        let err = SigstoreSigner::generate(&path, alg).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text,
            "the old key stands"
        );
    }
}

#[test]
fn openssl_keys_sign_and_openssl_verifies_our_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let body = checkpoint_body();
    std::fs::write(d.join("body"), &body).unwrap();
    openssl_ok(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "p256.pem",
        ],
    );
    openssl_ok(
        d,
        &["genpkey", "-algorithm", "ED25519", "-out", "ed25519.pem"],
    );
    for (key, verify) in [
        (
            "p256",
            vec![
                "dgst",
                "-sha256",
                "-verify",
                "p256.pub",
                "-signature",
                "p256.sig",
                "body",
            ],
        ),
        (
            "ed25519",
            vec![
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                "ed25519.pub",
                "-rawin",
                "-in",
                "body",
                "-sigfile",
                "ed25519.sig",
            ],
        ),
    ] {
        openssl_ok(
            d,
            &[
                "pkey",
                "-in",
                &format!("{key}.pem"),
                "-pubout",
                "-out",
                &format!("{key}.pub"),
            ],
        );
        let signer = SigstoreSigner::from_file(&d.join(format!("{key}.pem"))).unwrap();
        // The hint is base64 SHA-256 of the SPKI DER, as openssl computes it.
        let spki = openssl(
            d,
            &[
                "pkey",
                "-pubin",
                "-in",
                &format!("{key}.pub"),
                "-outform",
                "DER",
            ],
        )
        .stdout;
        assert_eq!(signer.key_name(), key_hint(&spki));
        let bundle = signer.sign(&body).unwrap();
        std::fs::write(d.join(format!("{key}.sig")), signature_of(&bundle)).unwrap();
        openssl_ok(d, &verify);
        let pem = std::fs::read_to_string(d.join(format!("{key}.pub"))).unwrap();
        SigstoreVerifier::from_pem(&pem)
            .unwrap()
            .verify(&body, &bundle)
            .unwrap();

        // openssl refuses the signature over an altered body too.
        std::fs::write(d.join("body"), b"altered\n").unwrap();
        assert!(
            !openssl(d, &verify).status.success(),
            "{key}: openssl accepted an altered body"
        );
        std::fs::write(d.join("body"), &body).unwrap();
    }
}

#[test]
fn unusable_key_files_get_errors_that_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl_ok(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "sec1.pem",
        ],
    );
    openssl_ok(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-out",
            "p384.pem",
        ],
    );
    openssl_ok(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-aes-128-cbc",
            "-pass",
            "pass:x",
            "-out",
            "enc.pem",
        ],
    );
    openssl_ok(d, &["genpkey", "-algorithm", "ED25519", "-out", "ed.pem"]);
    openssl_ok(d, &["pkey", "-in", "ed.pem", "-pubout", "-out", "ed.pub"]);
    openssl_ok(
        d,
        &["pkey", "-in", "p384.pem", "-pubout", "-out", "p384.pub"],
    );
    std::fs::write(d.join("garbage.pem"), "hello").unwrap();
    for (file, needle) in [
        ("sec1.pem", "openssl pkcs8 -topk8"),
        ("p384.pem", "neither an ECDSA P-256 nor an Ed25519"),
        ("enc.pem", "it is encrypted"),
        ("ed.pub", "it is a public key, not a private key"),
        ("garbage.pem", "not a PEM file"),
        ("missing.pem", "cannot read Sigstore signing key"),
    ] {
        let err = SigstoreSigner::from_file(&d.join(file)).unwrap_err();
        let text = format!("{err} {:?}", err.context());
        assert!(
            text.contains(needle),
            "{file}: expected {needle:?} in {text}"
        );
        if file != "missing.pem" {
            assert!(
                text.contains(file),
                "{file}: the error names the file: {text}"
            );
        }
    }
    let err = SigstoreVerifier::from_file(&d.join("p384.pub")).unwrap_err();
    assert!(err.to_string().contains("not supported"), "{err}");
    let err = SigstoreVerifier::from_file(&d.join("ed.pem")).unwrap_err();
    assert!(
        err.to_string()
            .contains("it is a private key, not a public key"),
        "{err}"
    );
}
