//! Reading an export back for [`verify_export`]: the format is detected from the first bytes,
//! and the entries are streamed through the checker (a JSON export through a serde seed, so it
//! is never loaded whole).

use super::checker::Checker;
use super::csv_reader::CsvReader;
use super::{CSV_COLUMNS, ExportEntry, ExportHeader, ExportVerifyOptions, ExternalReport};
use crate::error::{Error, Result};
use crate::ledger::signer::Verifier;
use std::io::BufRead;

/// Reads a JSON export's top-level object, feeding each entry to a [`Checker`] as it is
/// parsed, so a million-entry export verifies in constant memory. The header fields must come
/// before `entries` (as the writer puts them).
struct JsonExportSeed<'a, 'v> {
    verifiers: &'a [&'v dyn Verifier],
    options: &'a ExportVerifyOptions<'a>,
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
        // The header's required fields; `signatures` and `receipts` are optional.
        const HEADER_FIELDS: [&str; 8] = [
            "format",
            "hasher",
            "origin",
            "from",
            "to",
            "tree_size",
            "checkpoint",
            "subtrees",
        ];
        let mut header = serde_json::Map::new();
        let mut checker = None;
        // Entries that came before the header (a re-serialized file): checked at the end.
        let mut early: Option<Vec<ExportEntry>> = None;
        let make = |header: &mut serde_json::Map<String, serde_json::Value>| {
            let h: ExportHeader =
                serde_json::from_value(serde_json::Value::Object(std::mem::take(header)))
                    .map_err(|e| A::Error::custom(format!("header: {e}")))?;
            Checker::new(h, self.verifiers, self.options, "json", self.progress)
                .map_err(|e| A::Error::custom(e.to_string()))
        };
        while let Some(key) = map.next_key::<String>()? {
            if key == "entries" {
                if checker.is_some() || early.is_some() {
                    return Err(A::Error::custom("duplicate field `entries`"));
                }
                if HEADER_FIELDS.iter().all(|k| header.contains_key(*k)) {
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

/// Verifies an export (any of the three formats; detected from its first bytes) with only the
/// file and the trusted verifier keys.
pub fn verify_export(
    input: &mut dyn BufRead,
    verifiers: &[&dyn Verifier],
    progress: &dyn Fn(u64),
) -> Result<ExternalReport> {
    verify_export_with(input, verifiers, &ExportVerifyOptions::default(), progress)
}

/// JSON whitespace: what may precede an export, and all a skipped JSON Lines line may hold.
fn is_json_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// [`verify_export`], with the further requirements of `options` (e.g. a full export).
pub fn verify_export_with(
    input: &mut dyn BufRead,
    verifiers: &[&dyn Verifier],
    options: &ExportVerifyOptions<'_>,
    progress: &dyn Fn(u64),
) -> Result<ExternalReport> {
    // Leading JSON whitespace (blank lines included) is skipped in every format (9.6).
    let lead = loop {
        let buf = input.fill_buf().map_err(Error::from)?;
        match buf.iter().position(|&b| !is_json_space(b)) {
            Some(k) => {
                let b = buf[k];
                input.consume(k);
                break Some(b);
            }
            None if buf.is_empty() => break None,
            None => {
                let n = buf.len();
                input.consume(n);
            }
        }
    };
    match lead {
        Some(b'{') => {
            let mut line = String::new();
            input.read_line(&mut line).map_err(Error::from)?;
            if let Ok(header) = serde_json::from_str::<ExportHeader>(&line) {
                let mut c = Checker::new(header, verifiers, options, "jsonl", progress)?;
                let mut n = 1;
                loop {
                    line.clear();
                    n += 1;
                    if input.read_line(&mut line).map_err(Error::from)? == 0 {
                        break;
                    }
                    if line.bytes().all(is_json_space) {
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
                    options,
                    progress,
                },
                &mut de,
            )
            .map_err(|e| Error::invalid(format!("not a CORTEX JSON export: {e}")))?;
            de.end()
                .map_err(|e| Error::invalid(format!("trailing data after the JSON export: {e}")))?;
            Ok(c.finish())
        }
        Some(b't' | b'"') => {
            let mut rows = CsvReader::new(input);
            // Row `n` (1-based, empty lines not counted), which must have eight fields.
            let mut row = |n: u64| -> Result<Option<Vec<String>>> {
                match rows.next_row()? {
                    Some(r) if r.len() != CSV_COLUMNS.len() => Err(Error::invalid(format!(
                        "CSV row {n} has {} fields, not {}",
                        r.len(),
                        CSV_COLUMNS.len()
                    ))),
                    r => Ok(r),
                }
            };
            let cols = row(1)?.unwrap_or_default();
            if cols != CSV_COLUMNS {
                return Err(Error::invalid(format!(
                    "CSV columns are {cols:?}, expected {CSV_COLUMNS:?}"
                )));
            }
            let hrow = row(2)?.ok_or_else(|| Error::invalid("CSV has no header row"))?;
            if hrow[0] != "header" {
                return Err(Error::invalid(
                    "the first CSV row after the columns must be the `header` row",
                ));
            }
            let header: ExportHeader = serde_json::from_str(&hrow[5])
                .map_err(|e| Error::invalid(format!("CSV header row: {e}")))?;
            let mut c = Checker::new(header, verifiers, options, "csv", progress)?;
            let mut n = 2;
            // An entry row waits for a possible `opening` row after it.
            let mut pending: Option<ExportEntry> = None;
            while let Some(rec) = row(n + 1)? {
                n += 1;
                if rec[0] == "opening" {
                    let o = serde_json::from_str(&rec[5]).map_err(|e| {
                        Error::invalid(format!("CSV row {n}: not an opening object: {e}"))
                    })?;
                    match &mut pending {
                        Some(e) if e.opening.is_none() && e.index.to_string() == rec[1] => {
                            e.opening = Some(o);
                        }
                        _ => {
                            return Err(Error::invalid(format!(
                                "CSV row {n}: an opening row must directly follow the entry row \
                                 of its index, once"
                            )));
                        }
                    }
                    continue;
                }
                if rec[0] != "entry" {
                    return Err(Error::invalid(format!(
                        "CSV row {n}: type is not `entry` or `opening`"
                    )));
                }
                if let Some(e) = pending.take() {
                    c.entry(&e);
                }
                let idx_text = &rec[1];
                let canonical = !idx_text.is_empty()
                    && idx_text.bytes().all(|b| b.is_ascii_digit())
                    && (idx_text == "0" || !idx_text.starts_with('0'));
                let index = idx_text.parse::<u64>().ok().filter(|_| canonical).ok_or_else(|| {
                    Error::invalid(format!(
                        "CSV row {n}: index {idx_text:?} is not a decimal number without leading zeros"
                    ))
                })?;
                let [_, _, timestamp, project, action, detail, prev_hash, hash] =
                    <[String; 8]>::try_from(rec).expect("eight fields");
                pending = Some(ExportEntry {
                    index,
                    timestamp,
                    project,
                    action,
                    detail,
                    prev_hash,
                    hash,
                    opening: None,
                });
            }
            if let Some(e) = pending.take() {
                c.entry(&e);
            }
            Ok(c.finish())
        }
        _ => Err(Error::invalid(
            "not a CORTEX export: expected JSON, JSON Lines or CSV",
        )),
    }
}
