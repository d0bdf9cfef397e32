//! Checkpoint signers and policy keys, by name: `--signer KIND:PATH` adds a signer beside the
//! ledger's own Ed25519 note key, and a policy's `signer KIND KEY` lines turn into verifiers here.

use cortex_core::{Error, Result, Signer, Verifier};
use std::path::Path;
use std::sync::Arc;

/// The signer kinds this binary knows, with the cargo feature that brings each.
const KINDS: &[(&str, &str)] = &[("ed25519", ""), ("ssh", "ssh"), ("sigstore", "sigstore")];

fn unknown(kind: &str, what: &str) -> Error {
    if let Some((_, feature)) = KINDS.iter().find(|(k, _)| *k == kind) {
        return Error::config(format!(
            "the {kind} signer is not compiled into this binary: rebuild with `--features {feature}`"
        ));
    }
    Error::config(format!(
        "unknown signer kind {kind:?} in {what}; known: {}",
        KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
    ))
}

/// Opens a signer from `KIND:PATH` (`ed25519:~/.cortex/keys/second.skey`).
pub fn open(spec: &str) -> Result<Arc<dyn Signer>> {
    let (kind, path) = spec.split_once(':').ok_or_else(|| {
        Error::config(format!(
            "--signer {spec:?} is not KIND:PATH (for example ssh:~/.ssh/id_ed25519)"
        ))
    })?;
    let path = expand_home(path);
    match kind {
        "ed25519" => Ok(Arc::new(cortex_ed25519::Ed25519Signer::read_file(&path)?)),
        #[cfg(feature = "ssh")]
        "ssh" => Ok(Arc::new(cortex_ssh::SshSigner::from_file(&path)?)),
        #[cfg(feature = "sigstore")]
        "sigstore" => Ok(Arc::new(cortex_sigstore::SigstoreSigner::from_file(&path)?)),
        other => Err(unknown(other, &format!("--signer {spec:?}"))),
    }
}

/// Turns a policy key (its text) into a verifier for `kind`.
pub fn verifier(kind: &str, key: &str) -> Result<Box<dyn Verifier>> {
    match kind {
        "ed25519" => Ok(Box::new(cortex_ed25519::Ed25519Verifier::from_vkey(key)?)),
        #[cfg(feature = "ssh")]
        "ssh" => Ok(Box::new(cortex_ssh::SshVerifier::from_public_key(key)?)),
        #[cfg(feature = "sigstore")]
        "sigstore" => Ok(Box::new(cortex_sigstore::SigstoreVerifier::from_pem(key)?)),
        other => Err(unknown(other, "the policy")),
    }
}

/// `~/x` → `$HOME/x`.
pub fn expand_home(path: &str) -> std::path::PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => Path::new(path).to_path_buf(),
    }
}
