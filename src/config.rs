//! Resolves where things live (database, keys) from flags, environment and defaults, and reads
//! and writes key files. Wiring only: no ledger logic here; plugins are opened in `plugins`.

use cortex_core::ledger::policy::Policy;
use cortex_core::{Error, HashAlgorithm, Result};
use cortex_ed25519::Ed25519Verifier;
use std::path::{Path, PathBuf};

/// Global settings shared by every command.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Store URL or path.
    pub db: String,
    /// Hasher for a new ledger.
    pub hasher: Option<HashAlgorithm>,
    /// Signing key path, and whether the user named it explicitly.
    pub key: PathBuf,
    pub key_explicit: bool,
    /// Machine-readable output.
    pub json: bool,
    /// `--agent` / `CORTEX_AGENT`: the author of memory writes.
    pub agent: Option<String>,
    /// The home directory (default database, keys, policy).
    pub home: PathBuf,
    /// `--policy` / `CORTEX_POLICY`, and whether it was given (else `<home>/policy.txt` is used
    /// when it exists).
    pub policy: Option<PathBuf>,
    /// `--signer KIND:PATH`: signers beside the ledger's own note key.
    pub signers: Vec<String>,
    /// `--anchor KIND+URL`: the anchors to submit to.
    pub anchors: Vec<String>,
}

impl Settings {
    pub fn default_home() -> PathBuf {
        std::env::var_os("HOME")
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
            .join(".cortex")
    }
    /// The default signing key path under home.
    pub fn default_key(home: &Path) -> PathBuf {
        home.join("keys").join("ledger.skey")
    }
    /// The verifier key written beside a signing key.
    pub fn vkey_path(skey: &Path) -> PathBuf {
        cortex_ed25519::vkey_path(skey)
    }
}

impl Settings {
    /// The policy file in effect: `--policy`, or `<home>/policy.txt` if it exists.
    pub fn policy_path(&self) -> Option<PathBuf> {
        self.policy.clone().or_else(|| {
            let p = self.home.join("policy.txt");
            p.is_file().then_some(p)
        })
    }

    /// Reads the ledger policy in effect, if any.
    pub fn load_policy(&self) -> Result<Option<std::sync::Arc<Policy>>> {
        self.policy_path()
            .map(|p| Policy::read_file(&p, &crate::plugins::signers::verifier).map(Into::into))
            .transpose()
    }
}

/// A verifier key given as text (`name+id+key`) or as a path to a file holding one.
pub fn load_verifier(arg: &str) -> Result<Ed25519Verifier> {
    let text = if Path::new(arg).is_file() {
        std::fs::read_to_string(arg)
            .map_err(|e| Error::config(format!("cannot read verifier key {arg}")).with_source(e))?
    } else if arg.contains('+') {
        arg.to_owned()
    } else {
        return Err(Error::config(format!(
            "verifier key {arg:?} is neither a file nor a key of the form <name>+<id>+<key>"
        )));
    };
    Ed25519Verifier::from_vkey(text.trim())
}

/// A fresh origin for a new ledger: unique, and marked for BLAKE3 when that is the hasher.
pub fn default_origin(hasher: HashAlgorithm) -> Result<String> {
    let mut b = [0u8; 4];
    getrandom_fill(&mut b)?;
    let base = format!("cortex.local/ledger-{}", hex::encode(b));
    Ok(match hasher {
        HashAlgorithm::Blake3 => format!(
            "{base}{}",
            cortex_core::ledger::checkpoint::BLAKE3_ORIGIN_SUFFIX
        ),
        _ => base,
    })
}

fn getrandom_fill(b: &mut [u8]) -> Result<()> {
    getrandom::fill(b).map_err(|e| Error::backend(format!("the system random source failed: {e}")))
}
