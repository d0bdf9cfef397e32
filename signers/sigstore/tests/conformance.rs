//! The sigstore-conformance `bundle-verify` suite (sigstore/sigstore-conformance @ a73de497, in
//! the shared vectors) through [`BundleVerifier`], and the two production Rekor v2 bundles of
//! sigstore-js against the production trusted root.
//!
//! Each case directory is run the way the suite's README says: the artifact is the case's
//! `artifact` or else `../a.txt`; the trusted root is the case's `trusted_root.json` or else
//! the production root; with a `key.pub` the bundle is verified with that key
//! ([`BundleVerifier::verify_with_key`]), otherwise keylessly against the case's `identity` and
//! `issuer` (or the suite's defaults). A case must verify if and only if its name does not end
//! in `_fail`. Cases CORTEX does not check are listed in [`NOT_APPLICABLE`] with the reason; a
//! listed case must still be rejected (never silently accepted), and a listed case that would
//! pass fails the test, so the table cannot go stale.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cortex_sigstore::{BundleVerifier, ExpectedIdentity};
use sigstore_verify::crypto::parse_certificate_info;
use sigstore_verify::types::DerCertificate;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Cases outside what CORTEX checks, with the reason. Empty entries are not allowed.
const NOT_APPLICABLE: &[(&str, &str)] = &[];

fn vectors() -> PathBuf {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/sigstore-bundles");
    assert!(
        dir.join("trusted_root.production.json").is_file(),
        "the shared Sigstore vectors are missing at {}",
        dir.display()
    );
    dir
}

fn read_opt(path: &Path) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

fn text_opt(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// Runs one case; `Ok` if the bundle verified, the error message otherwise.
fn run_case(dir: &Path, production_root: &str) -> Result<(), String> {
    let suite = dir.parent().unwrap();
    let bundle = fs::read(dir.join("bundle.sigstore.json")).unwrap();
    let artifact =
        read_opt(&dir.join("artifact")).unwrap_or_else(|| fs::read(suite.join("a.txt")).unwrap());
    let root =
        text_opt(&dir.join("trusted_root.json")).unwrap_or_else(|| production_root.to_owned());
    let verifier = BundleVerifier::from_trusted_root_json(&root).map_err(|e| e.to_string())?;
    let outcome = match text_opt(&dir.join("key.pub")) {
        Some(key) => verifier.verify_with_key(&artifact, &bundle, &key),
        None => {
            let expected = ExpectedIdentity {
                san: text_opt(&dir.join("identity")).unwrap_or_else(|| DEFAULT_IDENTITY.into()),
                issuer: text_opt(&dir.join("issuer")).unwrap_or_else(|| DEFAULT_ISSUER.into()),
            };
            verifier.verify_keyless(&artifact, &bundle, &expected)
        }
    };
    outcome.map(drop).map_err(|e| e.to_string())
}

#[test]
fn bundle_verify_conformance_cases_verify_or_fail_as_the_suite_says() {
    let vectors = vectors();
    let production = fs::read_to_string(vectors.join("trusted_root.production.json")).unwrap();
    let suite = vectors.join("sigstore-conformance/bundle-verify");
    let not_applicable: BTreeMap<&str, &str> = NOT_APPLICABLE.iter().copied().collect();
    let mut cases: Vec<PathBuf> = fs::read_dir(&suite)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 70, "the snapshot has 70 cases");

    let (mut verified, mut failed, mut skipped) = (0, 0, 0);
    let mut mismatches = Vec::new();
    for dir in &cases {
        let name = dir.file_name().unwrap().to_str().unwrap();
        let should_pass = !name.ends_with("_fail");
        let outcome = run_case(dir, &production);
        eprintln!(
            "{name}: {}",
            outcome
                .as_ref()
                .map_or_else(|e| format!("rejected: {e}"), |()| "verified".into())
        );
        if let Some(reason) = not_applicable.get(name) {
            assert!(!reason.is_empty());
            skipped += 1;
            if outcome.is_ok() {
                mismatches.push(format!(
                    "{name}: listed as not applicable ({reason}) but it verifies"
                ));
            }
            continue;
        }
        match (&outcome, should_pass) {
            (Ok(()), true) => verified += 1,
            (Err(_), false) => failed += 1,
            (Ok(()), false) => {
                mismatches.push(format!("{name}: verified, but the suite expects a failure"))
            }
            (Err(e), true) => mismatches.push(format!(
                "{name}: rejected, but the suite expects success: {e}"
            )),
        }
    }
    eprintln!(
        "sigstore-conformance bundle-verify: {} cases, {} applicable: {verified} verified as expected, \
         {failed} failed as expected; {skipped} not applicable",
        cases.len(),
        cases.len() - skipped
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert_eq!(verified + failed + skipped, cases.len());
    for name in not_applicable.keys() {
        assert!(
            suite.join(name).is_dir(),
            "{name} is listed but is not a case"
        );
    }
}

/// The two production Rekor v2 bundles of sigstore-js do NOT verify with sigstore-verify 0.15.1,
/// and this test pins why, so that an upgrade that fixes it fails here and gets noticed:
///
/// - `hashedrekord-v0.0.2`: its log entry names the signer by the certificate's public key
///   (`verifier.publicKey`, as sigstore-js and sigstore-python log it) rather than by the
///   certificate; sigstore-verify requires the certificate form for a certificate bundle
///   ("certificate-backed Rekor entry contains no certificate"). The logged key is the
///   certificate's key (checked below), so the bundle is consistent; the verifier is stricter.
/// - `dsse-v0.0.2`: its entry kind `dsse` 0.0.2 was dropped by sigstore-rust (Rekor v2 logs DSSE
///   as hashedrekord 0.0.2), and its payload type `text/plain` cannot be bound to an artifact.
#[test]
fn the_production_rekor_v2_bundles_are_refused_by_sigstore_verify_0_15_1_for_known_reasons() {
    let vectors = vectors();
    let root = fs::read_to_string(vectors.join("trusted_root.production.json")).unwrap();
    let dir = vectors.join("sigstore-js-rekor-v2-production");
    let verifier = BundleVerifier::from_trusted_root_json(&root).unwrap();
    let artifact = fs::read(dir.join("artifact")).unwrap();
    let expected = ExpectedIdentity {
        san: "brian@dehamer.com".into(),
        issuer: "https://github.com/login/oauth".into(),
    };

    let bundle = fs::read(dir.join("hashedrekord-v0.0.2.sigstore.json")).unwrap();
    let err = verifier
        .verify_keyless(&artifact, &bundle, &expected)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("certificate-backed Rekor entry contains no certificate"),
        "{err}"
    );
    let json: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
    let b64 = |v: &serde_json::Value| B64.decode(v.as_str().unwrap()).unwrap();
    let cert = b64(&json["verificationMaterial"]["certificate"]["rawBytes"]);
    let info = parse_certificate_info(&DerCertificate::new(cert)).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&b64(
        &json["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"],
    ))
    .unwrap();
    let logged =
        b64(&body["spec"]["hashedRekordV002"]["signature"]["verifier"]["publicKey"]["rawBytes"]);
    assert_eq!(
        logged,
        info.public_key.as_bytes(),
        "the entry logs the certificate's own key"
    );

    let bundle = fs::read(dir.join("dsse-v0.0.2.sigstore.json")).unwrap();
    let err = verifier
        .verify_keyless(&artifact, &bundle, &expected)
        .unwrap_err();
    eprintln!("dsse-v0.0.2: {err}");
    assert!(
        err.to_string().contains("Sigstore bundle rejected"),
        "{err}"
    );
}

#[test]
fn unusable_trusted_roots_get_errors_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let err = BundleVerifier::from_trusted_root_file(&missing).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot read Sigstore trusted root"),
        "{err}"
    );
    let garbage = dir.path().join("root.json");
    fs::write(&garbage, "{\"mediaType\": 7}").unwrap();
    let err = BundleVerifier::from_trusted_root_file(&garbage).unwrap_err();
    assert!(
        err.to_string().contains("trusted root does not parse"),
        "{err}"
    );
    assert!(
        format!("{:?}", err.context()).contains("root.json"),
        "{:?}",
        err.context()
    );
    let production = vectors().join("trusted_root.production.json");
    BundleVerifier::from_trusted_root_file(&production).unwrap();
}
