//! Interoperability with the real OpenSSH `ssh-keygen`: CORTEX's SSHSIG checkpoint signatures
//! verify with `ssh-keygen -Y verify`, `ssh-keygen -Y sign` signatures verify with CORTEX, keys
//! CORTEX generates are keys `ssh-keygen` reads, and bad key files are refused with clear
//! errors. `ssh-keygen` must be installed (Debian package `openssh-client`); these tests never
//! skip.

use cortex_core::testkit::sample_entries;
use cortex_core::{
    CheckpointRecord, ErrorKind, InMemoryStore, Ledger, LedgerOptions, SignedNote, Signer, Verifier,
};
use cortex_ed25519::Ed25519Signer;
use cortex_ssh::{NAMESPACE, SshKeyType, SshSigner, SshVerifier, public_key_path};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The principal the tests' `allowed_signers` files name.
const PRINCIPAL: &str = "ci@cortex.test";

/// How long one `ssh-keygen` run may take before the test fails (RSA key generation is the
/// slowest, well under a second here).
const SSH_KEYGEN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `ssh-keygen args`, feeding `stdin`; fails the test naming the peer if it is missing or
/// does not finish in time (never a hang: there is no terminal to prompt on).
fn ssh_keygen(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new("ssh-keygen")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run ssh-keygen ({e}); these tests need the real OpenSSH ssh-keygen \
                 (Debian package openssh-client)"
            )
        });
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin).expect("write ssh-keygen's stdin");
    drop(input);
    let deadline = Instant::now() + SSH_KEYGEN_TIMEOUT;
    while child.try_wait().expect("wait for ssh-keygen").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ssh-keygen {args:?} did not finish within {SSH_KEYGEN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().expect("ssh-keygen output")
}

fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ssh-keygen -t …` arguments for each key type.
fn keygen_type_args(key_type: SshKeyType) -> &'static [&'static str] {
    match key_type {
        SshKeyType::Ed25519 => &["-t", "ed25519"],
        SshKeyType::EcdsaP256 => &["-t", "ecdsa", "-b", "256"],
        SshKeyType::EcdsaP384 => &["-t", "ecdsa", "-b", "384"],
    }
}

/// Makes a key with `ssh-keygen` (`extra` args, e.g. a passphrase) in `dir`; returns its path.
fn keygen_with(dir: &Path, name: &str, type_args: &[&str], passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let path_s = path.to_str().unwrap();
    let mut args = vec![
        "-q",
        "-N",
        passphrase,
        "-C",
        "made-by-ssh-keygen",
        "-f",
        path_s,
    ];
    args.extend_from_slice(type_args);
    assert_success(&ssh_keygen(&args, b""), "ssh-keygen key generation");
    path
}

fn keygen(dir: &Path, name: &str, key_type: SshKeyType) -> PathBuf {
    keygen_with(dir, name, keygen_type_args(key_type), "")
}

/// The fingerprint `ssh-keygen -l` prints for a key file (`SHA256:…`).
fn keygen_fingerprint(key: &Path) -> String {
    let out = ssh_keygen(&["-l", "-E", "sha256", "-f", key.to_str().unwrap()], b"");
    assert_success(&out, "ssh-keygen -l");
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).unwrap().to_owned()
}

/// Runs `ssh-keygen -Y verify` on `message` (stdin) and `signature`, trusting `public_key_line`
/// for [`PRINCIPAL`] in the `cortex-checkpoint` namespace only.
fn keygen_verify(dir: &Path, public_key_line: &str, signature: &[u8], message: &[u8]) -> Output {
    let allowed = dir.join("allowed_signers");
    std::fs::write(
        &allowed,
        format!("{PRINCIPAL} namespaces=\"{NAMESPACE}\" {public_key_line}\n"),
    )
    .unwrap();
    let sig = dir.join("checkpoint.sig");
    std::fs::write(&sig, signature).unwrap();
    ssh_keygen(
        &[
            "-Y",
            "verify",
            "-f",
            allowed.to_str().unwrap(),
            "-I",
            PRINCIPAL,
            "-n",
            NAMESPACE,
            "-s",
            sig.to_str().unwrap(),
        ],
        message,
    )
}

/// Signs `message` with `ssh-keygen -Y sign` in `namespace`; returns the armored signature.
fn keygen_sign(dir: &Path, key: &Path, namespace: &str, message: &[u8]) -> Vec<u8> {
    let file = dir.join("message.txt");
    std::fs::write(&file, message).unwrap();
    let _ = std::fs::remove_file(dir.join("message.txt.sig"));
    let out = ssh_keygen(
        &[
            "-Y",
            "sign",
            "-f",
            key.to_str().unwrap(),
            "-n",
            namespace,
            file.to_str().unwrap(),
        ],
        b"",
    );
    assert_success(&out, "ssh-keygen -Y sign");
    std::fs::read(dir.join("message.txt.sig")).unwrap()
}

/// A ledger of five entries signed by an Ed25519 note key and, if given, an SSH key; returns
/// its first checkpoint.
fn checkpointed_ledger(ssh: Option<Arc<SshSigner>>) -> CheckpointRecord {
    let store = Arc::new(InMemoryStore::new());
    let mut ledger = Ledger::open(store, LedgerOptions::default()).unwrap();
    let note_key = Ed25519Signer::generate("example.com/ssh-interop").unwrap();
    ledger.add_signer(Arc::new(note_key)).unwrap();
    if let Some(ssh) = ssh {
        ledger.add_signer(ssh).unwrap();
    }
    ledger.append(&sample_entries(5)).unwrap();
    let out = ledger.checkpoint().unwrap();
    assert!(out.created);
    out.record
}

/// The body text of a real checkpoint: `origin\n5\n<base64 root>\n`.
fn checkpoint_body(record: &CheckpointRecord) -> String {
    SignedNote::parse(record.note.as_bytes()).unwrap().text
}

/// The body with its tree size changed: what a forger would want signed instead.
fn altered(body: &str) -> String {
    let altered = body.replacen("\n5\n", "\n6\n", 1);
    assert_ne!(altered, body);
    altered
}

#[test]
fn cortex_signatures_verify_with_ssh_keygen_for_every_key_type() {
    let body = checkpoint_body(&checkpointed_ledger(None));
    for key_type in SshKeyType::ALL {
        let dir = tempfile::tempdir().unwrap();
        let key = keygen(dir.path(), "id", key_type);
        let signer = SshSigner::from_file(&key).unwrap();
        assert_eq!(signer.key_type(), key_type);
        assert_eq!(signer.key_name(), keygen_fingerprint(&key), "{key_type}");
        let public = std::fs::read_to_string(public_key_path(&key)).unwrap();
        let sig = signer.sign(body.as_bytes()).unwrap();
        let armor = std::str::from_utf8(&sig).unwrap();
        assert!(
            armor.starts_with("-----BEGIN SSH SIGNATURE-----\n"),
            "{armor}"
        );
        assert!(
            armor.ends_with("\n-----END SSH SIGNATURE-----\n"),
            "{armor}"
        );
        assert!(armor.lines().all(|l| l.len() <= 70), "{armor}");

        let good = keygen_verify(dir.path(), public.trim(), &sig, body.as_bytes());
        assert_success(&good, &format!("ssh-keygen -Y verify ({key_type})"));
        let said = String::from_utf8_lossy(&good.stdout);
        assert!(
            said.contains(&format!("Good \"{NAMESPACE}\" signature for {PRINCIPAL}"))
                && said.contains(signer.key_name()),
            "{said}"
        );

        let bad = keygen_verify(dir.path(), public.trim(), &sig, altered(&body).as_bytes());
        assert!(
            !bad.status.success(),
            "ssh-keygen accepted a {key_type} signature over altered text"
        );
    }
}

#[test]
fn ssh_keygen_signatures_verify_with_cortex_and_nothing_else_does() {
    let body = checkpoint_body(&checkpointed_ledger(None));
    for key_type in SshKeyType::ALL {
        let dir = tempfile::tempdir().unwrap();
        let key = keygen(dir.path(), "id", key_type);
        let other = keygen(dir.path(), "other", key_type);
        let verifier = SshVerifier::from_file(&public_key_path(&key)).unwrap();
        assert_eq!(verifier.key_name(), keygen_fingerprint(&key));
        let sig = keygen_sign(dir.path(), &key, NAMESPACE, body.as_bytes());

        verifier.verify(body.as_bytes(), &sig).unwrap();

        let e = verifier
            .verify(altered(&body).as_bytes(), &sig)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity);
        assert!(
            e.to_string().contains("does not match the signed text"),
            "{e}"
        );

        let git_sig = keygen_sign(dir.path(), &key, "git", body.as_bytes());
        let e = verifier.verify(body.as_bytes(), &git_sig).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity);
        assert!(
            e.to_string()
                .contains("for namespace \"git\", not \"cortex-checkpoint\""),
            "{e}"
        );
        // Trusting the other namespace explicitly makes the same signature acceptable.
        let git = verifier.clone().with_namespace("git").unwrap();
        git.verify(body.as_bytes(), &git_sig).unwrap();

        let other_verifier = SshVerifier::from_file(&public_key_path(&other)).unwrap();
        let e = other_verifier.verify(body.as_bytes(), &sig).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity);
        assert!(
            e.to_string().contains(&format!(
                "is by another key ({}), not {}",
                verifier.key_name(),
                other_verifier.key_name()
            )),
            "{e}"
        );

        let e = verifier
            .verify(body.as_bytes(), b"not a signature")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity);
        assert!(e.to_string().contains("not an SSHSIG signature"), "{e}");
    }
}

#[cfg(unix)]
#[test]
fn generated_keys_are_openssh_keys_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for key_type in SshKeyType::ALL {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("keys").join("checkpoint");
        let signer = SshSigner::generate(&key, key_type, "cortex checkpoints", false).unwrap();
        assert_eq!(mode(&key), 0o600, "{key_type}");
        let public = std::fs::read_to_string(public_key_path(&key)).unwrap();
        assert_eq!(public, format!("{}\n", signer.public_key_line()));
        assert!(public.ends_with(" cortex checkpoints\n"), "{public}");

        // ssh-keygen derives the same public key (and comment) from the private key file.
        let out = ssh_keygen(&["-y", "-f", key.to_str().unwrap()], b"");
        assert_success(&out, "ssh-keygen -y");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), public);
        assert_eq!(keygen_fingerprint(&key), signer.key_name());

        // ssh-keygen signs with it (it refuses key files others can read), and CORTEX
        // verifies that signature; the key read back from the file signs for ssh-keygen.
        let body = b"example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let sig = keygen_sign(dir.path(), &key, NAMESPACE, body);
        signer.verifier().verify(body, &sig).unwrap();
        let reread = SshSigner::from_file(&key).unwrap();
        let ours = reread.sign(body).unwrap();
        assert_success(
            &keygen_verify(dir.path(), public.trim(), &ours, body),
            "ssh-keygen -Y verify of a generated key",
        );
    }
}

#[cfg(unix)]
#[test]
fn an_existing_key_is_replaced_only_with_force() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    let first = SshSigner::generate(&key, SshKeyType::Ed25519, "first", false).unwrap();
    let e = SshSigner::generate(&key, SshKeyType::EcdsaP256, "second", false).unwrap_err();
    assert!(e.to_string().contains("already exists; pass force"), "{e}");
    assert_eq!(
        SshSigner::from_file(&key).unwrap().key_name(),
        first.key_name(),
        "the refused key must leave the first in place"
    );
    assert_eq!(
        std::fs::read_to_string(public_key_path(&key)).unwrap(),
        format!("{}\n", first.public_key_line())
    );

    let second = SshSigner::generate(&key, SshKeyType::EcdsaP256, "second", true).unwrap();
    let reread = SshSigner::from_file(&key).unwrap();
    assert_eq!(reread.key_name(), second.key_name());
    assert_eq!(reread.key_type(), SshKeyType::EcdsaP256);
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a replaced key stays private");
    assert_eq!(
        std::fs::read_to_string(public_key_path(&key)).unwrap(),
        format!("{}\n", second.public_key_line())
    );
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["id", "id.pub"], "no temporary file is left");
}

/// The error `from_file` gives for `path`, with its kind checked.
fn private_key_error(path: &Path, kind: ErrorKind) -> String {
    let e = SshSigner::from_file(path).unwrap_err();
    assert_eq!(e.kind(), kind, "{e}");

    e.to_string()
}

#[test]
fn bad_private_keys_are_refused_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let encrypted = keygen_with(d, "encrypted", &["-t", "ed25519"], "pass phrase");
    let e = private_key_error(&encrypted, ErrorKind::InvalidInput);
    assert!(e.contains("protected by a passphrase"), "{e}");
    assert!(e.contains("encrypted"), "the error names the file: {e}");

    let rsa = keygen_with(d, "rsa", &["-t", "rsa", "-b", "2048"], "");
    let e = private_key_error(&rsa, ErrorKind::InvalidInput);
    assert!(e.contains("RSA (ssh-rsa) keys are not supported"), "{e}");

    let rsa_pem = keygen_with(d, "rsa_pem", &["-t", "rsa", "-b", "2048", "-m", "PEM"], "");
    let e = private_key_error(&rsa_pem, ErrorKind::InvalidInput);
    assert!(
        e.contains("RSA (PEM \"RSA PRIVATE KEY\") keys are not supported"),
        "{e}"
    );

    let garbage = d.join("garbage");
    std::fs::write(&garbage, "this is not a key\n").unwrap();
    let e = private_key_error(&garbage, ErrorKind::InvalidInput);
    assert!(e.contains("not an OpenSSH private key"), "{e}");

    let binary = d.join("binary");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x80]).unwrap();
    let e = private_key_error(&binary, ErrorKind::InvalidInput);
    assert!(e.contains("not an SSH private key: it is not text"), "{e}");

    let truncated = d.join("truncated");
    let whole = std::fs::read_to_string(keygen(d, "whole", SshKeyType::Ed25519)).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    let e = private_key_error(&truncated, ErrorKind::InvalidInput);
    assert!(e.contains("malformed OpenSSH private key"), "{e}");

    let e = private_key_error(&public_key_path(&rsa), ErrorKind::InvalidInput);
    assert!(e.contains("it is a public key"), "{e}");

    let missing = d.join("missing");
    let e = private_key_error(&missing, ErrorKind::Config);
    assert!(e.contains("cannot read SSH private key"), "{e}");
    assert!(e.contains("missing") && e.contains("No such file"), "{e}");
}

#[test]
fn bad_public_keys_are_refused_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let public_key_error = |path: &Path| {
        let e = SshVerifier::from_file(path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        e.to_string()
    };

    let rsa = keygen_with(d, "rsa", &["-t", "rsa", "-b", "2048"], "");
    let e = public_key_error(&public_key_path(&rsa));
    assert!(e.contains("RSA (ssh-rsa) keys are not supported"), "{e}");

    let e = public_key_error(&keygen(d, "private", SshKeyType::Ed25519));
    assert!(e.contains("this is a PEM block (a private key?)"), "{e}");

    let garbage = d.join("garbage.pub");
    std::fs::write(&garbage, "ssh-ed25519 not-base64!\n").unwrap();
    let e = public_key_error(&garbage);
    assert!(e.contains("not an OpenSSH public key line"), "{e}");

    let e = SshVerifier::from_file(&d.join("missing.pub")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("cannot read SSH public key"), "{e}");
}

#[test]
fn a_ledger_checkpoint_carries_an_sshsig_that_ssh_keygen_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "id", SshKeyType::Ed25519);
    let signer = Arc::new(SshSigner::from_file(&key).unwrap());
    let record = checkpointed_ledger(Some(signer.clone()));

    assert_eq!(record.extra_signatures.len(), 1);
    let extra = &record.extra_signatures[0];
    assert_eq!(extra.scheme, "sshsig");
    assert_eq!(extra.key_name, keygen_fingerprint(&key));
    let body = checkpoint_body(&record);
    assert!(body.starts_with("example.com/ssh-interop\n5\n"), "{body}");

    // An auditor's check: only the .pub file, ssh-keygen, and an allowed_signers line CORTEX
    // wrote for it.
    let verifier = SshVerifier::from_file(&public_key_path(&key)).unwrap();
    let allowed = dir.path().join("allowed_signers");
    std::fs::write(
        &allowed,
        format!("{}\n", verifier.allowed_signers_line(PRINCIPAL).unwrap()),
    )
    .unwrap();
    let sig = dir.path().join("checkpoint.sig");
    std::fs::write(&sig, &extra.signature).unwrap();
    let verify = |message: &str| {
        ssh_keygen(
            &[
                "-Y",
                "verify",
                "-f",
                allowed.to_str().unwrap(),
                "-I",
                PRINCIPAL,
                "-n",
                NAMESPACE,
                "-s",
                sig.to_str().unwrap(),
            ],
            message.as_bytes(),
        )
    };
    assert_success(
        &verify(&body),
        "ssh-keygen -Y verify of the ledger's SSHSIG",
    );
    assert!(!verify(&altered(&body)).status.success());
    verifier
        .verify(body.as_bytes(), extra.signature.as_bytes())
        .unwrap();
}
