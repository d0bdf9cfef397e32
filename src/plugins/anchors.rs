//! Anchors, by kind and URL. A policy's `anchor KIND URL TRUST` lines declare them with the key
//! or certificate their receipts are checked with; `--anchor KIND+URL` picks which of them a
//! command submits to (all of the policy's when none is given).

use cortex_core::ledger::policy::{Policy, PolicyAnchor};
use cortex_core::{Anchor, Error, Result};
use std::path::Path;
use std::sync::Arc;

/// The anchor kinds this binary knows, with the cargo feature that brings each.
const KINDS: &[(&str, &str)] = &[("witness", ""), ("rfc3161", "rfc3161"), ("rekor", "rekor")];

/// What an anchor is opened for: submitting checkpoints (the operator's machine, which may
/// need a key of its own) or only checking receipts (anyone's, offline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Submit,
    Check,
}

/// Opens the anchor a policy line declares. `home` holds keys an anchor keeps for itself.
pub fn open(line: &PolicyAnchor, home: &Path, purpose: Purpose) -> Result<Arc<dyn Anchor>> {
    let bad = |e: Error| {
        Error::config(format!(
            "policy line {} (anchor {} {}): {}",
            line.line,
            line.kind,
            line.target,
            e.message()
        ))
    };
    match line.kind.as_str() {
        // A C2SP tlog-witness; trust: its cosignature/v1 verifier key.
        "witness" => cortex_witness::client::WitnessAnchor::new(&line.target, line.trust.trim())
            .map(|a| Arc::new(a) as Arc<dyn Anchor>)
            .map_err(bad),
        #[cfg(feature = "rekor")]
        "rekor" => rekor(line, home, purpose).map_err(bad),
        // An RFC 3161 timestamp authority; trust: the CA certificate(s) its tokens chain to (PEM).
        #[cfg(feature = "rfc3161")]
        "rfc3161" => cortex_rfc3161::TrustStore::new(line.trust.as_bytes())
            .and_then(|t| cortex_rfc3161::Rfc3161Anchor::new(&line.target, t))
            .map(|a| Arc::new(a) as Arc<dyn Anchor>)
            .map_err(bad),
        other => {
            let _ = (home, purpose);
            Err(bad(match KINDS.iter().find(|(k, _)| *k == other) {
                Some((_, feature)) => Error::config(format!(
                    "the {other} anchor is not compiled into this binary: rebuild with \
                     `--features {feature}`"
                )),
                None => Error::config(format!(
                    "unknown anchor kind {other:?}; known: {}",
                    KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                )),
            }))
        }
    }
}

/// A Rekor v2 log. Trust: the log's signed-note key (or lines `log <vkey>` / `witness <vkey>`).
/// Submitting signs each entry with the operator's own P-256 key, made on first use at
/// `HOME/keys/rekor-entry.pem`; checking a receipt needs no key.
#[cfg(feature = "rekor")]
fn rekor(line: &PolicyAnchor, home: &Path, purpose: Purpose) -> Result<Arc<dyn Anchor>> {
    let trust = cortex_rekor::RekorTrust::from_text(&line.trust)?;
    if purpose == Purpose::Check {
        return Ok(Arc::new(cortex_rekor::RekorAnchor::checker(
            &line.target,
            trust,
        )?));
    }
    let path = home.join("keys").join("rekor-entry.pem");
    let key = if path.exists() {
        cortex_rekor::EntrySigningKey::read_file(&path)?
    } else {
        let key = cortex_rekor::EntrySigningKey::generate()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::config(format!("cannot create {}", dir.display())).with_source(e)
            })?;
        }
        match key.write_new_file(&path) {
            Ok(()) => key,
            // Another process made it first: use that one.
            Err(_) if path.exists() => cortex_rekor::EntrySigningKey::read_file(&path)?,
            Err(e) => return Err(e),
        }
    };
    Ok(Arc::new(cortex_rekor::RekorAnchor::new(
        &line.target,
        trust,
        key,
    )?))
}

/// Every anchor the policy declares (to check receipts, and to submit to by default).
pub fn from_policy(policy: &Policy, home: &Path, purpose: Purpose) -> Result<Vec<Arc<dyn Anchor>>> {
    policy
        .anchors
        .iter()
        .map(|a| open(a, home, purpose))
        .collect()
}

/// The anchors whose receipts `verify` checks: every one the policy declares, opened to check
/// only (none without a policy).
pub fn to_check(policy: Option<&Policy>, home: &Path) -> Result<Vec<Arc<dyn Anchor>>> {
    match policy {
        Some(p) => from_policy(p, home, Purpose::Check),
        None => Ok(Vec::new()),
    }
}

/// The anchors to submit to: those `--anchor KIND+URL` names (each must be declared in the
/// policy, which holds the key its receipts are checked with), or all of the policy's.
pub fn selected(
    specs: &[String],
    policy: Option<&Policy>,
    home: &Path,
) -> Result<Vec<Arc<dyn Anchor>>> {
    let Some(policy) = policy else {
        return if specs.is_empty() {
            Ok(Vec::new())
        } else {
            Err(Error::config(format!(
                "--anchor {} needs a policy that declares it (`anchor KIND URL KEY`, with the \
                 key its receipts are checked with): pass --policy FILE",
                specs[0]
            )))
        };
    };
    if specs.is_empty() {
        return from_policy(policy, home, Purpose::Submit);
    }
    specs
        .iter()
        .map(|spec| {
            let (kind, url) = spec.split_once('+').ok_or_else(|| {
                Error::config(format!(
                    "--anchor {spec:?} is not KIND+URL (for example witness+https://w.example)"
                ))
            })?;
            let line = policy
                .anchors
                .iter()
                .find(|a| a.kind == kind && a.target == url)
                .ok_or_else(|| {
                    Error::config(format!(
                        "--anchor {spec}: the policy declares no `anchor {kind} {url} KEY` line \
                         (an anchor's receipts are checked with the key the policy gives)"
                    ))
                })?;
            open(line, home, Purpose::Submit)
        })
        .collect()
}
