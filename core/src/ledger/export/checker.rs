//! The offline check of an export, format-independent: the header against the signed checkpoint
//! note, each entry against the chain rule as it is read, and at the end the entries and the
//! header's subtree hashes against the signed root.

use super::{EXPORT_FORMAT, ExportEntry, ExportHeader, ExternalReport};
use crate::error::{Error, Result};
use crate::ledger::checkpoint::{Checkpoint, algorithm_of_origin};
use crate::ledger::entry::EntryRef;
use crate::ledger::hash::{Hash, Hasher};
use crate::ledger::merkle::{covering_subtrees, root_with_range};
use crate::ledger::note::SignedNote;
use crate::ledger::signer::Verifier;
use crate::ledger::verify::{Violation, ViolationKind};
use std::collections::HashMap;

pub(super) struct Checker<'a> {
    hasher: std::sync::Arc<dyn Hasher>,
    header: ExportHeader,
    cp: Option<Checkpoint>,
    expect: u64,
    prev: Option<Hash>,
    leaves: Vec<Hash>,
    buf: Vec<u8>,
    report: ExternalReport,
    progress: &'a dyn Fn(u64),
}

impl<'a> Checker<'a> {
    pub(super) fn new(
        header: ExportHeader,
        verifiers: &[&dyn Verifier],
        format: &'static str,
        progress: &'a dyn Fn(u64),
    ) -> Result<Self> {
        if header.format != EXPORT_FORMAT {
            return Err(Error::invalid(format!(
                "unknown export format {:?}; expected {EXPORT_FORMAT:?}",
                header.format
            )));
        }
        let mut report = ExternalReport {
            valid: false,
            format,
            origin: header.origin.clone(),
            tree_size: header.tree_size,
            from: header.from,
            to: header.to,
            entries_checked: 0,
            violations: Vec::new(),
            violation_count: 0,
        };
        let mut cp = None;
        let hdr_violation = |report: &mut ExternalReport, kind, msg: String| {
            report.violations.push(Violation {
                kind,
                index: None,
                checkpoint: Some(header.tree_size),
                memory: None,
                message: msg,
            });
        };
        match SignedNote::parse(header.checkpoint.as_bytes()) {
            Err(e) => hdr_violation(
                &mut report,
                ViolationKind::BadSignature,
                format!("checkpoint: {e}"),
            ),
            Ok(note) => {
                let verified = match note.verify(verifiers) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        hdr_violation(
                            &mut report,
                            ViolationKind::BadSignature,
                            format!("checkpoint: {e}"),
                        );
                        None
                    }
                };
                match Checkpoint::parse(&note.text) {
                    Err(e) => hdr_violation(
                        &mut report,
                        ViolationKind::BadSignature,
                        format!("checkpoint: {e}"),
                    ),
                    Ok(c) => {
                        if let Some(v) = &verified
                            && let Err(e) =
                                crate::ledger::checkpoint::check_cortex_checkpoint(&c, v)
                        {
                            hdr_violation(
                                &mut report,
                                ViolationKind::BadSignature,
                                format!("checkpoint: {e}"),
                            );
                        }
                        cp = Some(c);
                    }
                }
            }
        }
        let algorithm = algorithm_of_origin(cp.as_ref().map_or(&header.origin, |c| &c.origin));
        if let Some(c) = &cp {
            if c.origin != header.origin {
                hdr_violation(
                    &mut report,
                    ViolationKind::BadSignature,
                    format!(
                        "header origin {:?} differs from the signed origin {:?}",
                        header.origin, c.origin
                    ),
                );
            }
            if c.size != header.tree_size {
                hdr_violation(
                    &mut report,
                    ViolationKind::BadRoot,
                    format!(
                        "header tree_size {} differs from the signed size {}",
                        header.tree_size, c.size
                    ),
                );
            }
        }
        if header.hasher != algorithm.name() {
            hdr_violation(
                &mut report,
                ViolationKind::BadSignature,
                format!(
                    "header hasher {:?} differs from the {} the signed origin commits to",
                    header.hasher,
                    algorithm.name()
                ),
            );
        }
        if header.from > header.to {
            hdr_violation(
                &mut report,
                ViolationKind::MissingEntry,
                format!("header range {}..={} is empty", header.from, header.to),
            );
        }
        Ok(Checker {
            hasher: algorithm.hasher(),
            expect: header.from,
            header,
            cp,
            prev: None,
            leaves: Vec::new(),
            buf: Vec::new(),
            report,
            progress,
        })
    }

    fn flag(&mut self, kind: ViolationKind, index: u64, message: String) {
        self.report.violation_count += 1;
        if self.report.violations.len() < crate::ledger::verify::MAX_LISTED_VIOLATIONS {
            self.report.violations.push(Violation {
                kind,
                index: Some(index),
                checkpoint: None,
                memory: None,
                message,
            });
        }
    }

    pub(super) fn entry(&mut self, e: &ExportEntry) {
        self.report.entries_checked += 1;
        if self.report.entries_checked.is_multiple_of(8192) {
            (self.progress)(self.report.entries_checked);
        }
        let i = e.index;
        if i != self.expect {
            if i > self.expect {
                let s = self.expect;
                self.flag(
                    ViolationKind::MissingEntry,
                    s,
                    format!("entries {s} to {} are missing", i - 1),
                );
            } else {
                self.flag(
                    ViolationKind::ReorderedEntry,
                    i,
                    format!("entry {i} appears after entry {}", self.expect - 1),
                );
            }
        }
        self.expect = i.max(self.expect) + 1;
        let entry = EntryRef {
            index: i,
            timestamp: &e.timestamp,
            project: &e.project,
            action: &e.action,
            detail: &e.detail,
        };
        let leaf = entry.leaf_hash(&*self.hasher, &mut self.buf);
        self.leaves.push(leaf);
        let (prev, hash) = match (Hash::from_hex(&e.prev_hash), Hash::from_hex(&e.hash)) {
            (Ok(p), Ok(h)) => (p, h),
            _ => {
                self.flag(
                    ViolationKind::AlteredEntry,
                    i,
                    format!("entry {i}: prev_hash or hash is not 64 hex digits"),
                );
                self.prev = None;
                return;
            }
        };
        if self.hasher.chain(&prev, &leaf) != hash {
            self.flag(
                ViolationKind::AlteredEntry,
                i,
                format!("entry {i} was altered: it does not hash to its chain hash"),
            );
        } else if let Some(p) = self.prev
            && p != prev
        {
            self.flag(
                ViolationKind::BrokenChain,
                i,
                format!(
                    "entry {i}: prev_hash does not equal the hash of entry {}",
                    i - 1
                ),
            );
        } else if i == 0 && prev != Hash::ZERO {
            self.flag(
                ViolationKind::BrokenChain,
                0,
                "entry 0: prev_hash is not all zeros".into(),
            );
        }
        self.prev = Some(hash);
    }

    pub(super) fn finish(mut self) -> ExternalReport {
        (self.progress)(self.report.entries_checked);
        let to = self.header.to;
        if self.expect <= to {
            let s = self.expect;
            self.flag(
                ViolationKind::Truncated,
                s,
                format!("the export ends at entry {s} but its header says {to}"),
            );
        } else if self.expect > to + 1 {
            self.flag(
                ViolationKind::InsertedEntry,
                to + 1,
                format!("the export has entries past its header's last index {to}"),
            );
        }
        if let Some(cp) = &self.cp {
            let want =
                covering_subtrees(cp.size, self.header.from, self.header.to.saturating_add(1));
            let got: Vec<(u8, u64)> = self
                .header
                .subtrees
                .iter()
                .map(|s| (s.level, s.index))
                .collect();
            let map: Result<HashMap<(u8, u64), Hash>> = self
                .header
                .subtrees
                .iter()
                .map(|s| Ok(((s.level, s.index), Hash::from_hex(&s.hash)?)))
                .collect();
            let result = match map {
                _ if want != got => Err(Error::invalid(
                    "the subtree list is not the one the range needs".to_string(),
                )),
                Err(e) => Err(e),
                Ok(map) => {
                    root_with_range(&*self.hasher, cp.size, self.header.from, &self.leaves, &map)
                }
            };
            match result {
                Ok(r) if r == cp.root => {}
                Ok(r) => self.flag(
                    ViolationKind::BadRoot,
                    self.header.from,
                    format!(
                        "the entries give root {} but the checkpoint signed {}",
                        r.to_base64(),
                        cp.root.to_base64()
                    ),
                ),
                Err(e) => self.flag(
                    ViolationKind::BadRoot,
                    self.header.from,
                    format!("the root cannot be recomputed: {e}"),
                ),
            }
        }
        let hdr = self
            .report
            .violations
            .iter()
            .filter(|v| v.index.is_none())
            .count() as u64;
        self.report.violation_count += hdr;
        self.report.valid = self.report.violation_count == 0;
        self.report
    }
}
