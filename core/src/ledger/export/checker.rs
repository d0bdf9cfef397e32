//! The offline check of an export, format-independent (docs/FORMATS.md 9.7): the header against
//! the signed checkpoint note; each entry, as it is read, against the range and the chain rule;
//! at the end the order of the indices, the links between entries `i - 1` and `i`, and the
//! entries and the header's subtree hashes against the signed root.
//!
//! Entries are placed by their own index, not by their place in the file, so one edit is one
//! finding: two swapped entries are two `reordered_entry` findings (their chain and the root
//! still hold), a deleted entry is one `missing_entry`, and nothing after either is affected.

use super::{EXPORT_FORMAT, ExportEntry, ExportHeader, ExportVerifyOptions, ExternalReport};
use crate::error::{Error, Result};
use crate::ledger::checkpoint::{Checkpoint, algorithm_of_origin, check_cortex_checkpoint};
use crate::ledger::entry::EntryRef;
use crate::ledger::hash::{Hash, Hasher};
use crate::ledger::merkle::{covering_subtrees, root_with_range};
use crate::ledger::note::SignedNote;
use crate::ledger::signer::Verifier;
use crate::ledger::verify::{MAX_LISTED_VIOLATIONS, Violation, ViolationKind};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What the chain check remembers of an entry: its hash if it hashes to it, `None` if the entry
/// is altered (then no link to or from it is checked: the altered entry is the finding).
type Link = Option<Hash>;

pub(super) struct Checker<'a> {
    /// The algorithm of the verified checkpoint's origin; `None` when no checkpoint verified
    /// (section 2: never chosen from an unsigned field, so then nothing is hashed).
    hasher: Option<Arc<dyn Hasher>>,
    header: ExportHeader,
    /// The checkpoint, if its note verified with a trusted key.
    cp: Option<Checkpoint>,
    /// Indices of the entries kept (inside the range, first of their index), in file order.
    order: Vec<u64>,
    /// Their leaf hashes, in the same order (only with a hasher).
    leaves: Vec<Hash>,
    /// True while `order` is strictly increasing.
    in_order: bool,
    /// The kept indices as a set, built once the order breaks (until then `order` is sorted).
    seen: Option<HashSet<u64>>,
    /// The previous kept entry in file order and its link.
    last: Option<(u64, Link)>,
    /// Links of entries not followed in the file by the entry after them.
    loose: HashMap<u64, Link>,
    /// `(i, prev_hash)` of correctly hashed entries not preceded in the file by entry `i - 1`.
    unlinked: Vec<(u64, Hash)>,
    buf: Vec<u8>,
    report: ExternalReport,
    progress: &'a dyn Fn(u64),
}

impl<'a> Checker<'a> {
    pub(super) fn new(
        header: ExportHeader,
        verifiers: &[&dyn Verifier],
        options: &ExportVerifyOptions<'_>,
        format: &'static str,
        progress: &'a dyn Fn(u64),
    ) -> Result<Self> {
        if header.format != EXPORT_FORMAT {
            return Err(Error::invalid(format!(
                "unknown export format {:?}; expected {EXPORT_FORMAT:?}",
                header.format
            )));
        }
        let report = ExternalReport {
            valid: false,
            format,
            origin: header.origin.clone(),
            tree_size: header.tree_size,
            from: header.from,
            to: header.to,
            entries_checked: 0,
            receipts_checked: 0,
            receipts_unchecked: 0,
            violations: Vec::new(),
            violation_count: 0,
        };
        let mut c = Checker {
            hasher: None,
            header,
            cp: None,
            order: Vec::new(),
            leaves: Vec::new(),
            in_order: true,
            seen: None,
            last: None,
            loose: HashMap::new(),
            unlinked: Vec::new(),
            buf: Vec::new(),
            report,
            progress,
        };
        c.check_header(verifiers, options);
        Ok(c)
    }

    fn header_finding(&mut self, kind: ViolationKind, message: String) {
        self.report.violations.push(Violation {
            kind,
            index: None,
            checkpoint: Some(self.header.tree_size),
            memory: None,
            message,
        });
    }

    fn flag(&mut self, kind: ViolationKind, index: u64, message: String) {
        self.report.violation_count += 1;
        if self.report.violations.len() < MAX_LISTED_VIOLATIONS {
            self.report.violations.push(Violation {
                kind,
                index: Some(index),
                checkpoint: None,
                memory: None,
                message,
            });
        }
    }

    /// Checks each receipt with the anchor of its kind and target, if one was given.
    fn check_receipts(&mut self, options: &ExportVerifyOptions<'_>) {
        for rc in self.header.receipts.clone() {
            let Some(a) = options
                .anchors
                .iter()
                .find(|a| a.kind() == rc.anchor && a.target() == rc.target)
            else {
                self.report.receipts_unchecked += 1;
                continue;
            };
            self.report.receipts_checked += 1;
            if let Err(e) = a.verify_receipt(&self.header.checkpoint, &rc) {
                self.header_finding(
                    ViolationKind::BadReceipt,
                    format!("checkpoint: {} receipt from {}: {e}", rc.anchor, rc.target),
                );
            }
        }
    }

    fn check_header(&mut self, verifiers: &[&dyn Verifier], options: &ExportVerifyOptions<'_>) {
        use ViolationKind::{BadRoot, BadSignature, MissingEntry, Truncated};
        match SignedNote::parse(self.header.checkpoint.as_bytes()) {
            Err(e) => self.header_finding(BadSignature, format!("checkpoint: {e}")),
            Ok(note) => {
                let verified = match options.policy {
                    Some(policy) => {
                        // The size picks the keys valid for it; it is trusted only once the
                        // note verifies, and a wrong one finds no valid key.
                        let size = Checkpoint::parse(&note.text).map_or(0, |c| c.size);
                        let outcome = policy.check(size, &note, &self.header.signatures);
                        for p in outcome.problems {
                            self.header_finding(BadSignature, format!("checkpoint: {p}"));
                        }
                        Some(outcome.verified_note_names)
                    }
                    None => match note.verify(verifiers) {
                        Ok(names) => Some(names),
                        Err(e) => {
                            self.header_finding(BadSignature, format!("checkpoint: {e}"));
                            None
                        }
                    },
                };
                self.check_receipts(options);
                match Checkpoint::parse(&note.text) {
                    Err(e) => self.header_finding(BadSignature, format!("checkpoint: {e}")),
                    Ok(c) => {
                        if let Some(names) = verified {
                            if let Err(e) = check_cortex_checkpoint(&c, &names) {
                                self.header_finding(BadSignature, format!("checkpoint: {e}"));
                            }
                            self.cp = Some(c);
                        }
                    }
                }
            }
        }
        let (from, to) = (self.header.from, self.header.to);
        if let Some(cp) = self.cp.clone() {
            let algorithm = algorithm_of_origin(&cp.origin);
            self.hasher = Some(algorithm.hasher());
            if cp.origin != self.header.origin {
                self.header_finding(
                    BadSignature,
                    format!(
                        "header origin {:?} differs from the signed origin {:?}",
                        self.header.origin, cp.origin
                    ),
                );
            }
            if cp.size != self.header.tree_size {
                self.header_finding(
                    BadRoot,
                    format!(
                        "header tree_size {} differs from the signed size {}",
                        self.header.tree_size, cp.size
                    ),
                );
            }
            if self.header.hasher != algorithm.name() {
                self.header_finding(
                    BadSignature,
                    format!(
                        "header hasher {:?} differs from the {} the signed origin commits to",
                        self.header.hasher,
                        algorithm.name()
                    ),
                );
            }
        }
        if from > to {
            self.header_finding(MissingEntry, format!("header range {from}..={to} is empty"));
        }
        if options.full {
            // `from` and `to` are not signed: only the whole tree is checked for completeness.
            let size = self.cp.as_ref().map(|c| c.size);
            let held = format!(
                "--full: the export holds entries {from} to {to} of a checkpoint of {}",
                size.map_or_else(|| "unverified size".to_owned(), |s| s.to_string())
            );
            if from > 0 {
                self.flag(
                    MissingEntry,
                    0,
                    format!("{held}; entries 0 to {} are not in it", from - 1),
                );
            }
            if let Some(size) = size
                && to.saturating_add(1) < size
            {
                self.flag(
                    Truncated,
                    to + 1,
                    format!("{held}; entries {} to {} are not in it", to + 1, size - 1),
                );
            }
        }
    }

    /// Keeps `i` unless it is outside the range or a second entry with that index.
    fn keep(&mut self, i: u64) -> bool {
        let (from, to) = (self.header.from, self.header.to);
        if from > to {
            return false; // the empty range is the header's finding; no entry is placed in it
        }
        if i < from || i > to {
            self.flag(
                ViolationKind::InsertedEntry,
                i,
                format!("entry {i} is outside the header's range {from} to {to}"),
            );
            return false;
        }
        let last = self.order.last().copied();
        if self.in_order && last.is_none_or(|l| i > l) {
            if let Some(seen) = self.seen.as_mut() {
                seen.insert(i);
            }
            self.order.push(i);
            return true;
        }
        let order = &self.order;
        let seen = self
            .seen
            .get_or_insert_with(|| order.iter().copied().collect());
        if !seen.insert(i) {
            self.flag(
                ViolationKind::InsertedEntry,
                i,
                format!("a second entry with index {i}"),
            );
            return false;
        }
        self.in_order = false;
        self.order.push(i);
        true
    }

    pub(super) fn entry(&mut self, e: &ExportEntry) {
        self.report.entries_checked += 1;
        if self.report.entries_checked.is_multiple_of(8192) {
            (self.progress)(self.report.entries_checked);
        }
        let i = e.index;
        if !self.keep(i) {
            return;
        }
        let Some(hasher) = self.hasher.clone() else {
            return;
        };
        let leaf = EntryRef {
            index: i,
            timestamp: &e.timestamp,
            project: &e.project,
            action: &e.action,
            detail: &e.detail,
        }
        .leaf_hash(&*hasher, &mut self.buf);
        self.leaves.push(leaf);
        if let Some(o) = &e.opening {
            self.opening(e, o, &*hasher);
        }
        let link = match (Hash::from_hex(&e.prev_hash), Hash::from_hex(&e.hash)) {
            (Ok(prev), Ok(hash)) if hasher.chain(&prev, &leaf) == hash => {
                self.link(i, prev);
                Some(hash)
            }
            (Ok(_), Ok(_)) => {
                self.flag(
                    ViolationKind::AlteredEntry,
                    i,
                    format!("entry {i} was altered: it does not hash to its chain hash"),
                );
                None
            }
            _ => {
                self.flag(
                    ViolationKind::AlteredEntry,
                    i,
                    format!("entry {i}: prev_hash or hash is not 64 hex digits"),
                );
                None
            }
        };
        if let Some((j, l)) = self.last
            && j.checked_add(1) != Some(i)
        {
            self.loose.insert(j, l);
        }
        self.last = Some((i, link));
    }

    /// An opening must open the commitment in the detail of the entry it accompanies (FORMATS.md
    /// §15.3): a sealed `fact.store` entry's `commitment`.
    fn opening(&mut self, e: &ExportEntry, o: &super::ExportOpening, hasher: &dyn Hasher) {
        let i = e.index;
        let commitment = serde_json::from_str::<serde_json::Value>(&e.detail)
            .ok()
            .filter(|_| e.action == "fact.store")
            .and_then(|d| {
                d.get("commitment")
                    .and_then(|c| c.as_str())
                    .map(str::to_owned)
            });
        match commitment {
            None => self.flag(
                ViolationKind::CommitmentMismatch,
                i,
                format!(
                    "entry {i} carries an opening but holds no commitment (not a sealed fact.store)"
                ),
            ),
            Some(c) => {
                let opens = crate::ledger::commitment::opens(
                    hasher,
                    &c,
                    &o.salt,
                    &o.content,
                    &o.tags,
                    o.source.as_deref(),
                );
                if !opens {
                    self.flag(
                        ViolationKind::CommitmentMismatch,
                        i,
                        format!(
                            "entry {i}: the content and salt beside it do not open its \
                             commitment {c}: the content was altered"
                        ),
                    );
                }
            }
        }
    }

    /// The link check of a correctly hashed entry `i` with `prev_hash` `prev`: against entry
    /// `i - 1` if the file just gave it, later (from `loose`) if it comes elsewhere.
    fn link(&mut self, i: u64, prev: Hash) {
        if i == 0 {
            if prev != Hash::ZERO {
                self.flag(
                    ViolationKind::BrokenChain,
                    0,
                    "entry 0: prev_hash is not all zeros".into(),
                );
            }
            return;
        }
        if i == self.header.from {
            return; // the first entry of a sub-range export: nothing signed to link to (14.1)
        }
        match self.last {
            Some((j, l)) if j.checked_add(1) == Some(i) => self.check_link(i, prev, l),
            _ => self.unlinked.push((i, prev)),
        }
    }

    fn check_link(&mut self, i: u64, prev: Hash, before: Link) {
        if let Some(h) = before
            && h != prev
        {
            self.flag(
                ViolationKind::BrokenChain,
                i,
                format!(
                    "entry {i}: prev_hash does not equal the hash of entry {}",
                    i - 1
                ),
            );
        }
    }

    pub(super) fn finish(mut self) -> ExternalReport {
        (self.progress)(self.report.entries_checked);
        // Links to entries that stood elsewhere in the file.
        if let Some((j, l)) = self.last {
            self.loose.insert(j, l);
        }
        for (i, prev) in std::mem::take(&mut self.unlinked) {
            if let Some(&before) = self.loose.get(&(i - 1)) {
                self.check_link(i, prev, before);
            }
            // else entry i - 1 is not in the export: its absence is the finding
        }
        let complete = self.check_order();
        // Header findings first, then the entries' by index (stable: per index, as found), then
        // the root's, which concerns the whole range.
        self.report.violations.sort_by_key(|v| v.index);
        if complete {
            self.check_root();
        }
        let header = self
            .report
            .violations
            .iter()
            .filter(|v| v.index.is_none())
            .count() as u64;
        self.report.violation_count += header;
        self.report.valid = self.report.violation_count == 0;
        self.report
    }

    /// Reordered entries and the gaps in the range; true if every index of the range is held.
    fn check_order(&mut self) -> bool {
        let (from, to) = (self.header.from, self.header.to);
        if from > to {
            return false;
        }
        let sorted: Vec<u64> = if self.in_order {
            Vec::new()
        } else {
            let mut s = self.order.clone();
            s.sort_unstable();
            s
        };
        if !self.in_order {
            let moved: Vec<(u64, u64)> = self
                .order
                .iter()
                .zip(&sorted)
                .filter(|(a, b)| a != b)
                .map(|(&a, &b)| (a, b))
                .collect();
            for (got, want) in moved {
                self.flag(
                    ViolationKind::ReorderedEntry,
                    got,
                    format!(
                        "entry {got} stands where entry {want} belongs (entries were swapped or moved)"
                    ),
                );
            }
        }
        let present = if self.in_order {
            std::mem::take(&mut self.order)
        } else {
            sorted
        };
        // Runs of indices of [from, to] that no entry holds.
        let mut next = from;
        let mut gaps = Vec::new();
        for &i in &present {
            if i > next {
                gaps.push((next, i - 1));
            }
            next = i + 1;
        }
        let complete = (to - from).checked_add(1) == Some(present.len() as u64);
        if let Some(last) = present.last() {
            if *last < to {
                self.flag(
                    ViolationKind::Truncated,
                    last + 1,
                    format!("the export ends at entry {last} but its header says {to}"),
                );
            }
        } else {
            self.flag(
                ViolationKind::Truncated,
                from,
                format!("the export holds no entry of its range {from} to {to}"),
            );
        }
        for (a, b) in gaps {
            let msg = if a == b {
                format!("entry {a} is missing")
            } else {
                format!("entries {a} to {b} are missing")
            };
            self.flag(ViolationKind::MissingEntry, a, msg);
        }
        if !self.in_order {
            // The leaves, placed by index.
            let mut pairs: Vec<(u64, Hash)> = self
                .order
                .iter()
                .copied()
                .zip(std::mem::take(&mut self.leaves))
                .collect();
            pairs.sort_unstable_by_key(|p| p.0);
            self.leaves = pairs.into_iter().map(|p| p.1).collect();
        }
        complete
    }

    /// The entries (placed by index) and the subtree hashes against the signed root.
    fn check_root(&mut self) {
        let (Some(cp), Some(hasher)) = (self.cp.clone(), self.hasher.clone()) else {
            return;
        };
        let from = self.header.from;
        let want = covering_subtrees(cp.size, from, self.header.to.saturating_add(1));
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
            Ok(map) => root_with_range(&*hasher, cp.size, from, &self.leaves, &map),
        };
        match result {
            Ok(r) if r == cp.root => {}
            Ok(r) => self.flag(
                ViolationKind::BadRoot,
                from,
                format!(
                    "the entries give root {} but the checkpoint signed {}",
                    r.to_base64(),
                    cp.root.to_base64()
                ),
            ),
            Err(e) => self.flag(
                ViolationKind::BadRoot,
                from,
                format!("the root cannot be recomputed: {e}"),
            ),
        }
    }
}
