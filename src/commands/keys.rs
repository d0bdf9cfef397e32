//! `cortex keys generate`.

use crate::config::{self, Settings};
use crate::output;
use cortex_core::{Error, HashAlgorithm, Result, Signer};
use cortex_ed25519::Ed25519Signer;
use std::path::PathBuf;

/// What `keys generate` was asked for.
pub struct KeySpec {
    /// `ed25519`, `ssh` or `sigstore`.
    pub kind: String,
    /// For SSH keys: `ed25519` (default), `ecdsa-p256`, `ecdsa-p384`; for Sigstore keys:
    /// `ecdsa-p256` (default) or `ed25519`.
    pub algorithm: Option<String>,
    /// For note keys: the key name (the checkpoint origin).
    pub name: Option<String>,
    /// Where to write the secret key.
    pub out: Option<PathBuf>,
    /// Replace an existing key file.
    pub force: bool,
}

pub fn generate(s: &Settings, k: KeySpec) -> Result<u8> {
    if k.kind == "ed25519" && k.algorithm.is_some() {
        return Err(Error::config(
            "--algorithm applies to --type ssh and --type sigstore; an ed25519 note key has none",
        ));
    }
    match k.kind.as_str() {
        "ed25519" => ed25519(s, k),
        #[cfg(feature = "ssh")]
        "ssh" => ssh(s, k),
        #[cfg(feature = "sigstore")]
        "sigstore" => sigstore(s, k),
        other => Err(Error::config(format!(
            "unknown key type {other:?}; this binary makes: ed25519{}{}",
            if cfg!(feature = "ssh") { ", ssh" } else { "" },
            if cfg!(feature = "sigstore") {
                ", sigstore"
            } else {
                ""
            }
        ))),
    }
}

fn ed25519(s: &Settings, k: KeySpec) -> Result<u8> {
    let hasher = s.hasher.unwrap_or(HashAlgorithm::Sha256);
    let name = match k.name {
        Some(n) => n,
        None => config::default_origin(hasher)?,
    };
    cortex_core::ledger::checkpoint::validate_origin(&name, hasher)?;
    let path = k.out.unwrap_or_else(|| s.key.clone());
    let signer = Ed25519Signer::generate(&name)?;
    let vkey_path = signer.write_files(&path, k.force)?;
    if s.json {
        output::json(&serde_json::json!({
            "ok": true, "type": "ed25519", "name": signer.key_name(), "skey_path": path,
            "vkey_path": vkey_path, "vkey": signer.to_vkey(),
        }));
    } else {
        println!("✓ Generated Ed25519 checkpoint key {:?}", signer.key_name());
        println!("  secret key:   {} (keep it private)", path.display());
        println!(
            "  verifier key: {} (give it to auditors)",
            vkey_path.display()
        );
        println!("  {}", signer.to_vkey());
        println!("  policy line:  signer ed25519 {}", vkey_path.display());
    }
    Ok(0)
}

#[cfg(feature = "ssh")]
fn ssh(s: &Settings, k: KeySpec) -> Result<u8> {
    let key_type: cortex_ssh::SshKeyType = k.algorithm.as_deref().unwrap_or("ed25519").parse()?;
    let path = k
        .out
        .unwrap_or_else(|| s.home.join("keys").join(format!("ssh_{}", key_type.name())));
    let comment = k.name.unwrap_or_else(|| "cortex checkpoint signer".into());
    let signer = cortex_ssh::SshSigner::generate(&path, key_type, &comment, k.force)?;
    let public = cortex_ssh::public_key_path(&path);
    if s.json {
        output::json(&serde_json::json!({
            "ok": true, "type": "ssh", "algorithm": key_type.name(), "key_name": signer.key_name(),
            "key_path": path, "public_key_path": public, "namespace": signer.namespace(),
        }));
    } else {
        println!(
            "✓ Generated SSH {} checkpoint signer {}",
            key_type.name(),
            signer.key_name()
        );
        println!("  private key: {} (keep it private)", path.display());
        println!("  public key:  {}", public.display());
        println!(
            "  sign with:   cortex --signer ssh:{} ledger checkpoint",
            path.display()
        );
        println!("  policy line: signer ssh {}", public.display());
        println!(
            "  check by hand: ssh-keygen -Y verify -n {} -f allowed_signers -I <id> -s sig < body",
            signer.namespace()
        );
    }
    Ok(0)
}

#[cfg(feature = "sigstore")]
fn sigstore(s: &Settings, k: KeySpec) -> Result<u8> {
    let chosen = k.algorithm.as_deref().unwrap_or("ecdsa-p256");
    let algorithm = match chosen {
        "ecdsa-p256" => cortex_sigstore::KeyAlgorithm::EcdsaP256Sha256,
        "ed25519" => cortex_sigstore::KeyAlgorithm::Ed25519,
        other => {
            return Err(Error::config(format!(
                "--algorithm {other:?} is not a Sigstore key type; use ecdsa-p256 or ed25519"
            )));
        }
    };
    let path = k
        .out
        .unwrap_or_else(|| s.home.join("keys").join(format!("sigstore_{chosen}.pem")));
    if path.exists() && !k.force {
        return Err(Error::config(format!(
            "{} already exists; pass --force to replace it",
            path.display()
        )));
    }
    if k.force {
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(cortex_sigstore::public_key_path(&path));
    }
    let signer = cortex_sigstore::SigstoreSigner::generate(&path, algorithm)?;
    let public = cortex_sigstore::public_key_path(&path);
    if s.json {
        output::json(&serde_json::json!({
            "ok": true, "type": "sigstore", "algorithm": chosen, "key_details": algorithm.name(),
            "key_name": signer.key_name(), "key_path": path, "public_key_path": public,
        }));
    } else {
        println!(
            "✓ Generated Sigstore {chosen} checkpoint signer {}",
            signer.key_name()
        );
        println!("  private key: {} (keep it private)", path.display());
        println!("  public key:  {}", public.display());
        println!(
            "  sign with:   cortex --signer sigstore:{} ledger checkpoint",
            path.display()
        );
        println!("  policy line: signer sigstore {}", public.display());
    }
    Ok(0)
}

/// `cortex keys api create`: prints the token once.
pub fn api_create(s: &Settings, name: &str, role: &str) -> Result<u8> {
    let role: cortex_core::access::Role = role.parse()?;
    let keys = api_keys(s)?;
    let made = keys.create(name, role)?;
    if s.json {
        output::json(&serde_json::json!({
            "ok": true, "token": made.token, "key": made.key, "entry_index": made.entry_index,
        }));
    } else {
        println!("{}", made.token);
        eprintln!(
            "✓ API key {} for {} ({} role); shown once: only its SHA-256 is stored (ledger entry {})",
            made.key.id, made.key.name, made.key.role, made.entry_index
        );
    }
    Ok(0)
}

/// `cortex keys api list`.
pub fn api_list(s: &Settings) -> Result<u8> {
    let keys = api_keys(s)?.list()?;
    if s.json {
        output::json(&serde_json::json!({"ok": true, "keys": keys, "count": keys.len()}));
    } else if keys.is_empty() {
        println!("No API keys. Create one with `cortex keys api create --name NAME --role ROLE`.");
    } else {
        println!(
            "{:<12}  {:<6}  {:<27}  {:<27}  name",
            "id", "role", "created", "revoked"
        );
        for k in &keys {
            println!(
                "{:<12}  {:<6}  {:<27}  {:<27}  {}",
                k.id,
                k.role.as_str(),
                k.created_at,
                k.revoked_at.as_deref().unwrap_or("-"),
                k.name
            );
        }
    }
    Ok(0)
}

/// `cortex keys api revoke`.
pub fn api_revoke(s: &Settings, id: &str) -> Result<u8> {
    let key = api_keys(s)?.revoke(id)?;
    if s.json {
        output::json(&serde_json::json!({"ok": true, "key": key}));
    } else {
        println!(
            "✓ API key {} ({}) revoked; servers stop accepting it within {} s",
            key.id,
            key.name,
            cortex_rest::RestConfig::default().key_cache_ttl.as_secs()
        );
    }
    Ok(0)
}

fn api_keys(s: &Settings) -> Result<cortex_core::access::ApiKeys> {
    let ledger = crate::commands::ledger::open_ledger(s, 0)?;
    Ok(cortex_core::access::ApiKeys::new(std::sync::Arc::new(
        ledger,
    )))
}
