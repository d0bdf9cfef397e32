//! Verifiable exports (JSON, JSON Lines, CSV) and their offline verification.
//!
//! An export carries a contiguous range of entries, the signed checkpoint that covers them, and
//! the hashes of the perfect subtrees outside the range ([`crate::ledger::merkle::covering_subtrees`]), so
//! an auditor can recompute the signed root from the file and the log's public key alone. Every
//! field is covered by a check: entry fields by the root, hash-chain fields by the chain rule,
//! header fields by the signed note.

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::ledger::checkpoint::{Checkpoint, algorithm_of_origin};
use crate::ledger::entry::EntryRef;
use crate::ledger::hash::{Hash, Hasher};
use crate::ledger::merkle::{covering_subtrees, root_with_range};
use crate::ledger::note::SignedNote;
use crate::ledger::signer::Verifier;
use crate::ledger::tiles::TileNodes;
use crate::ledger::verify::{Violation, ViolationKind};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, Write};

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
}

/// Reads a JSON export's top-level object, feeding each entry to a [`Checker`] as it is
/// parsed, so a million-entry export verifies in constant memory. The header fields must come
/// before `entries` (as the writer puts them).
struct JsonExportSeed<'a, 'v> {
    verifiers: &'a [&'v dyn Verifier],
    progress: &'a dyn Fn(u64),
}

impl<'de, 'a, 'v> serde::de::DeserializeSeed<'de> for JsonExportSeed<'a, 'v> {
    type Value = Checker<'a>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 'a, 'v> serde::de::Visitor<'de> for JsonExportSeed<'a, 'v> {
    type Value = Checker<'a>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a CORTEX export object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error as _;
        const HEADER_FIELDS: usize = 8;
        let mut header = serde_json::Map::new();
        let mut checker = None;
        // Entries that came before the header (a re-serialized file): checked at the end.
        let mut early: Option<Vec<ExportEntry>> = None;
        let make = |header: &mut serde_json::Map<String, serde_json::Value>| {
            let h: ExportHeader =
                serde_json::from_value(serde_json::Value::Object(std::mem::take(header)))
                    .map_err(|e| A::Error::custom(format!("header: {e}")))?;
            Checker::new(h, self.verifiers, "json", self.progress)
                .map_err(|e| A::Error::custom(e.to_string()))
        };
        while let Some(key) = map.next_key::<String>()? {
            if key == "entries" {
                if checker.is_some() || early.is_some() {
                    return Err(A::Error::custom("duplicate field `entries`"));
                }
                if header.len() == HEADER_FIELDS {
                    checker = Some(map.next_value_seed(EntriesSeed(make(&mut header)?))?);
                } else {
                    early = Some(map.next_value()?);
                }
            } else if checker.is_some() {
                return Err(A::Error::custom(format!(
                    "unknown field `{key}` after `entries`"
                )));
            } else {
                let v: serde_json::Value = map.next_value()?;
                if header.insert(key.clone(), v).is_some() {
                    return Err(A::Error::custom(format!("duplicate field `{key}`")));
                }
            }
        }
        match (checker, early) {
            (Some(c), _) => Ok(c),
            (None, Some(entries)) => {
                let mut c = make(&mut header)?;
                for e in &entries {
                    c.entry(e);
                }
                Ok(c)
            }
            (None, None) => Err(A::Error::missing_field("entries")),
        }
    }
}

struct EntriesSeed<'a>(Checker<'a>);

impl<'de, 'a> serde::de::DeserializeSeed<'de> for EntriesSeed<'a> {
    type Value = Checker<'a>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, 'a> serde::de::Visitor<'de> for EntriesSeed<'a> {
    type Value = Checker<'a>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of export entries")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        mut self,
        mut seq: A,
    ) -> Result<Self::Value, A::Error> {
        while let Some(e) = seq.next_element::<ExportEntry>()? {
            self.0.entry(&e);
        }
        Ok(self.0)
    }
}

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

/// Writes an export of entries `from..=to` (default: everything the latest checkpoint covers).
pub fn write_export(
    ledger: &Ledger,
    format: ExportFormat,
    from: Option<u64>,
    to: Option<u64>,
    out: &mut dyn Write,
    progress: &dyn Fn(u64),
) -> Result<ExportSummary> {
    let cp = ledger.store().latest_checkpoint()?.ok_or_else(|| {
        Error::invalid("the ledger has no checkpoint yet: run `cortex ledger checkpoint` first")
    })?;
    let from = from.unwrap_or(0);
    let to = to.unwrap_or(cp.size - 1);
    if from > to {
        return Err(Error::invalid(format!("--from {from} is after --to {to}")));
    }
    if to >= cp.size {
        return Err(Error::invalid(format!(
            "entry {to} is not covered by the latest checkpoint ({} entries): run \
             `cortex ledger checkpoint` first, or export up to {}",
            cp.size,
            cp.size - 1
        )));
    }
    let h = ledger.hasher();
    let nodes = TileNodes::new(&**ledger.store(), h);
    let subtrees = covering_subtrees(cp.size, from, to + 1)
        .into_iter()
        .map(|(level, index)| {
            use crate::ledger::merkle::NodeSource;
            Ok(SubtreeHash {
                level,
                index,
                hash: nodes.node(level, index)?.to_hex(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let origin = Checkpoint::parse(&SignedNote::parse(cp.note.as_bytes())?.text)?.origin;
    let header = ExportHeader {
        format: EXPORT_FORMAT.into(),
        hasher: h.algorithm().name().into(),
        origin,
        from,
        to,
        tree_size: cp.size,
        checkpoint: cp.note.clone(),
        subtrees,
    };
    let io = |e: std::io::Error| Error::from(e);
    let header_json = serde_json::to_string(&header).map_err(|e| Error::backend(e.to_string()))?;
    match format {
        ExportFormat::Json => {
            out.write_all(&header_json.as_bytes()[..header_json.len() - 1])
                .map_err(io)?;
            out.write_all(b",\"entries\":[\n").map_err(io)?;
        }
        ExportFormat::Jsonl => {
            out.write_all(header_json.as_bytes()).map_err(io)?;
            out.write_all(b"\n").map_err(io)?;
        }
        ExportFormat::Csv => {
            let mut buf = Vec::new();
            write_csv_row(&mut buf, &CSV_COLUMNS);
            write_csv_row(&mut buf, &["header", "", "", "", "", &header_json, "", ""]);
            out.write_all(&buf).map_err(io)?;
        }
    }
    let mut count = 0u64;
    let mut line = Vec::with_capacity(512);
    ledger.store().scan_entries(from..to + 1, &mut |r| {
        let e = ExportEntry {
            index: r.entry.index,
            timestamp: r.entry.timestamp.to_owned(),
            project: r.entry.project.to_owned(),
            action: r.entry.action.to_owned(),
            detail: r.entry.detail.to_owned(),
            prev_hash: hex::encode(r.prev_hash),
            hash: hex::encode(r.hash),
        };
        line.clear();
        match format {
            ExportFormat::Json | ExportFormat::Jsonl => {
                if format == ExportFormat::Json && count > 0 {
                    line.extend_from_slice(b",\n");
                }
                serde_json::to_writer(&mut line, &e).map_err(|e| Error::backend(e.to_string()))?;
                if format == ExportFormat::Jsonl {
                    line.push(b'\n');
                }
            }
            ExportFormat::Csv => {
                let idx = e.index.to_string();
                write_csv_row(
                    &mut line,
                    &[
                        "entry",
                        &idx,
                        &e.timestamp,
                        &e.project,
                        &e.action,
                        &e.detail,
                        &e.prev_hash,
                        &e.hash,
                    ],
                );
            }
        }
        out.write_all(&line).map_err(io)?;
        count += 1;
        if count.is_multiple_of(8192) {
            progress(count);
        }
        Ok(())
    })?;
    if format == ExportFormat::Json {
        out.write_all(b"\n]}\n").map_err(io)?;
    }
    out.flush().map_err(io)?;
    progress(count);
    Ok(ExportSummary {
        format: format.name(),
        from,
        to,
        count,
        tree_size: cp.size,
    })
}

/// Appends one RFC 4180 row (CRLF-free: rows end in `\n`), quoting fields that need it.
fn write_csv_row(out: &mut Vec<u8>, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if f.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
            out.push(b'"');
            out.extend_from_slice(f.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(f.as_bytes());
        }
    }
    out.push(b'\n');
}

fn csv_err(e: csv::Error) -> Error {
    Error::invalid(format!("CSV: {e}"))
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
    /// Findings (at most 1000 listed).
    pub violations: Vec<Violation>,
    /// Total findings.
    pub violation_count: u64,
}

struct Checker<'a> {
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
    fn new(
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
                message,
            });
        }
    }

    fn entry(&mut self, e: &ExportEntry) {
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

    fn finish(mut self) -> ExternalReport {
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

/// Verifies an export (any of the three formats; detected from its first bytes) with only the
/// file and the trusted verifier keys.
pub fn verify_export(
    input: &mut dyn BufRead,
    verifiers: &[&dyn Verifier],
    progress: &dyn Fn(u64),
) -> Result<ExternalReport> {
    let first = input.fill_buf().map_err(Error::from)?;
    let lead = first.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match lead {
        Some(b'{') => {
            let mut line = String::new();
            input.read_line(&mut line).map_err(Error::from)?;
            if let Ok(header) = serde_json::from_str::<ExportHeader>(&line) {
                let mut c = Checker::new(header, verifiers, "jsonl", progress)?;
                let mut n = 1;
                loop {
                    line.clear();
                    n += 1;
                    if input.read_line(&mut line).map_err(Error::from)? == 0 {
                        break;
                    }
                    if line.trim().is_empty() {
                        continue;
                    }
                    let e: ExportEntry = serde_json::from_str(&line).map_err(|e| {
                        Error::invalid(format!("line {n}: not an export entry: {e}"))
                    })?;
                    c.entry(&e);
                }
                return Ok(c.finish());
            }
            // A JSON export: stream its entries through the checker instead of loading them.
            let reader = std::io::Read::chain(std::io::Cursor::new(line.into_bytes()), input);
            let mut de = serde_json::Deserializer::from_reader(reader);
            let c = serde::de::DeserializeSeed::deserialize(
                JsonExportSeed {
                    verifiers,
                    progress,
                },
                &mut de,
            )
            .map_err(|e| Error::invalid(format!("not a CORTEX JSON export: {e}")))?;
            de.end()
                .map_err(|e| Error::invalid(format!("trailing data after the JSON export: {e}")))?;
            Ok(c.finish())
        }
        Some(b't') => {
            let mut r = csv::ReaderBuilder::new()
                .has_headers(true)
                .from_reader(input);
            let cols: Vec<String> = r
                .headers()
                .map_err(csv_err)?
                .iter()
                .map(str::to_owned)
                .collect();
            if cols != CSV_COLUMNS {
                return Err(Error::invalid(format!(
                    "CSV columns are {cols:?}, expected {CSV_COLUMNS:?}"
                )));
            }
            let mut records = r.into_records();
            let hrow = records
                .next()
                .ok_or_else(|| Error::invalid("CSV has no header row"))?
                .map_err(csv_err)?;
            if hrow.get(0) != Some("header") {
                return Err(Error::invalid(
                    "the first CSV row after the columns must be the `header` row",
                ));
            }
            let header: ExportHeader = serde_json::from_str(hrow.get(5).unwrap_or_default())
                .map_err(|e| Error::invalid(format!("CSV header row: {e}")))?;
            let mut c = Checker::new(header, verifiers, "csv", progress)?;
            for (k, rec) in records.enumerate() {
                let rec = rec.map_err(csv_err)?;
                let row = k + 3;
                if rec.get(0) != Some("entry") {
                    return Err(Error::invalid(format!(
                        "CSV row {row}: type is not `entry`"
                    )));
                }
                let idx_text = rec.get(1).unwrap_or_default();
                let canonical = !idx_text.is_empty()
                    && idx_text.bytes().all(|b| b.is_ascii_digit())
                    && (idx_text == "0" || !idx_text.starts_with('0'));
                let index = idx_text.parse::<u64>().ok().filter(|_| canonical).ok_or_else(|| {
                    Error::invalid(format!(
                        "CSV row {row}: index {idx_text:?} is not a decimal number without leading zeros"
                    ))
                })?;
                let f = |i: usize| rec.get(i).unwrap_or_default().to_owned();
                c.entry(&ExportEntry {
                    index,
                    timestamp: f(2),
                    project: f(3),
                    action: f(4),
                    detail: f(5),
                    prev_hash: f(6),
                    hash: f(7),
                });
            }
            Ok(c.finish())
        }
        _ => Err(Error::invalid(
            "not a CORTEX export: expected JSON, JSON Lines or CSV",
        )),
    }
}
