//! Anchors, by kind and URL. A policy's `anchor KIND URL TRUST` lines declare them with the key
//! or certificate their receipts are checked with; `--anchor KIND+URL` picks which of them a
//! command submits to (all of the policy's when none is given).

use cortex_core::ledger::policy::{Policy, PolicyAnchor};
use cortex_core::{Anchor, Error, Result};
use std::path::Path;
use std::sync::Arc;

/// The anchor kinds this binary knows.
const KINDS: &[&str] = &[];

/// Opens the anchor a policy line declares. `home` holds keys an anchor keeps for itself.
pub fn open(line: &PolicyAnchor, _home: &Path) -> Result<Arc<dyn Anchor>> {
    Err(Error::config(format!(
        "policy line {}: unknown anchor kind {:?}; known: {}",
        line.line,
        line.kind,
        if KINDS.is_empty() {
            "none compiled in".to_owned()
        } else {
            KINDS.join(", ")
        }
    )))
}

/// Every anchor the policy declares (to check receipts, and to submit to by default).
pub fn from_policy(policy: &Policy, home: &Path) -> Result<Vec<Arc<dyn Anchor>>> {
    policy.anchors.iter().map(|a| open(a, home)).collect()
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
        return from_policy(policy, home);
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
            open(line, home)
        })
        .collect()
}
