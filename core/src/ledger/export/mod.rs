//! Verifiable exports (JSON, JSON Lines, CSV) and their offline verification.
//!
//! An export carries a contiguous range of entries, the signed checkpoint that covers them, and
//! the hashes of the perfect subtrees outside the range ([`crate::ledger::merkle::covering_subtrees`]), so
//! an auditor can recompute the signed root from the file and the log's public key alone. Every
//! field is covered by a check: entry fields by the root, hash-chain fields by the chain rule,
//! header fields by the signed note.
//!
//! This module holds the file format (header, entry and summary types, the CSV columns);
//! `write` writes an export, `read` reads one back (`csv_reader` holds the CSV reading rules)
//! and `checker` verifies what it reads.

mod checker;
mod csv_reader;
mod read;
#[cfg(test)]
mod tests;
mod write;

pub use read::{verify_export, verify_export_with};
pub use write::{write_export, write_export_with};

use crate::error::{Error, Result};
use crate::ledger::verify::Violation;
use serde::{Deserialize, Serialize};

/// Format tag of every export.
pub const EXPORT_FORMAT: &str = "cortex-ledger-export/v1";

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object: the header fields plus `entries`.
    Json,
    /// JSON Lines: the header object, then one entry object per line.
    Jsonl,
    /// CSV: a column header, one `header` row carrying the header JSON, then `entry` rows.
    Csv,
}

impl ExportFormat {
    /// Parses `json`, `jsonl` or `csv`.
    pub fn parse(s: &str) -> Result<ExportFormat> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(ExportFormat::Json),
            "jsonl" | "ndjson" => Ok(ExportFormat::Jsonl),
            "csv" => Ok(ExportFormat::Csv),
            _ => Err(Error::invalid(format!(
                "unknown export format {s:?}; available: json, jsonl, csv"
            ))),
        }
    }
    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }
}

/// A perfect subtree outside the exported range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubtreeHash {
    /// Tree level (0 = a single leaf).
    pub level: u8,
    /// Index at that level.
    pub index: u64,
    /// Hex hash.
    pub hash: String,
}

/// Everything but the entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportHeader {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// `sha256` or `blake3` (must agree with the origin).
    pub hasher: String,
    /// The log origin (must equal the checkpoint's).
    pub origin: String,
    /// First exported index.
    pub from: u64,
    /// Last exported index (inclusive).
    pub to: u64,
    /// Size of the checkpoint (must equal the checkpoint's).
    pub tree_size: u64,
    /// The signed checkpoint note.
    pub checkpoint: String,
    /// Detached signatures of the checkpoint's text (SSH, Sigstore), checked against a policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<crate::ledger::checkpoint::ExtraSignature>,
    /// Anchor receipts of the checkpoint (witness cosignatures, timestamps, Rekor entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receipts: Vec<crate::ledger::checkpoint::Receipt>,
    /// Hashes of the perfect subtrees outside `[from, to]`.
    pub subtrees: Vec<SubtreeHash>,
}

/// One exported entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportEntry {
    /// Index.
    pub index: u64,
    /// Canonical timestamp.
    pub timestamp: String,
    /// Project.
    pub project: String,
    /// Action.
    pub action: String,
    /// Detail JSON text, verbatim (a string, so its bytes survive).
    pub detail: String,
    /// Hex chain hash of the previous entry.
    pub prev_hash: String,
    /// Hex chain hash of this entry.
    pub hash: String,
    /// For an entry that holds a salted commitment (a sealed `fact.store`), the content it
    /// commits to and the salt, when still present (FORMATS.md §15.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening: Option<ExportOpening>,
}

/// The opening of an entry's commitment, as an export carries it: not part of the entry's
/// bytes, protected by the commitment ([`crate::ledger::commitment`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportOpening {
    /// The salt, 64 hex digits.
    pub salt: String,
    /// The content.
    pub content: String,
    /// The tags, in order.
    pub tags: Vec<String>,
    /// The source, if any.
    pub source: Option<String>,
}

/// Where [`write_export_with`] finds the opening of an entry's commitment (`None`: no opening,
/// e.g. the content was erased, or the entry holds no commitment).
pub type OpeningSource<'a> =
    &'a dyn Fn(&crate::ledger::entry::EntryRef<'_>) -> Result<Option<ExportOpening>>;

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    /// Format written.
    pub format: &'static str,
    /// First index.
    pub from: u64,
    /// Last index.
    pub to: u64,
    /// Entries written.
    pub count: u64,
    /// Checkpoint size the export is verified against.
    pub tree_size: u64,
}

const CSV_COLUMNS: [&str; 8] = [
    "type",
    "index",
    "timestamp",
    "project",
    "action",
    "detail",
    "prev_hash",
    "hash",
];

/// What [`verify_export_with`] requires beyond a valid export.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportVerifyOptions<'a> {
    /// Require the export to hold the whole tree of its checkpoint (entries 0 to size − 1).
    /// The header's `from` and `to` are not signed, so without this a copy with entries cut
    /// off either end (and `from`/`to`/`subtrees` rewritten to match) verifies as a partial
    /// export; with it, the missing ends are `missing_entry` and `truncated` findings.
    pub full: bool,
    /// Check the checkpoint's signatures (note lines and the export's detached `signatures`)
    /// against this policy instead of the verifier keys alone.
    pub policy: Option<&'a crate::ledger::policy::Policy>,
    /// Anchors whose receipts (the export's `receipts`, matched by kind and target) to check.
    pub anchors: &'a [std::sync::Arc<dyn crate::ledger::anchor::Anchor>],
}

/// The outcome of verifying an export offline.
#[derive(Debug, Clone, Serialize)]
pub struct ExternalReport {
    /// True if nothing is wrong.
    pub valid: bool,
    /// Detected format.
    pub format: &'static str,
    /// Origin claimed by the export.
    pub origin: String,
    /// Checkpoint size.
    pub tree_size: u64,
    /// First index.
    pub from: u64,
    /// Last index.
    pub to: u64,
    /// Entries read.
    pub entries_checked: u64,
    /// Receipts verified by a given anchor.
    pub receipts_checked: u64,
    /// Receipts of anchors not given (not checked).
    pub receipts_unchecked: u64,
    /// Findings (at most 1000 listed).
    pub violations: Vec<Violation>,
    /// Total findings.
    pub violation_count: u64,
}
