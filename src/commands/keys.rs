//! `cortex keys generate`.

use crate::config::{self, Settings};
use crate::output;
use cortex_core::{HashAlgorithm, Result, Signer};
use cortex_ed25519::Ed25519Signer;
use std::path::PathBuf;

pub fn generate(
    s: &Settings,
    name: Option<String>,
    out: Option<PathBuf>,
    force: bool,
) -> Result<u8> {
    let hasher = s.hasher.unwrap_or(HashAlgorithm::Sha256);
    let name = match name {
        Some(n) => n,
        None => config::default_origin(hasher)?,
    };
    cortex_core::ledger::checkpoint::validate_origin(&name, hasher)?;
    let path = out.unwrap_or_else(|| s.key.clone());
    let signer = Ed25519Signer::generate(&name)?;
    let vkey_path = signer.write_files(&path, force)?;
    if s.json {
        output::json(&serde_json::json!({
            "ok": true, "name": signer.key_name(), "skey_path": path, "vkey_path": vkey_path,
            "vkey": signer.to_vkey(),
        }));
    } else {
        println!("✓ Generated Ed25519 checkpoint key {:?}", signer.key_name());
        println!("  secret key:   {} (keep it private)", path.display());
        println!(
            "  verifier key: {} (give it to auditors)",
            vkey_path.display()
        );
        println!("  {}", signer.to_vkey());
    }
    Ok(0)
}
