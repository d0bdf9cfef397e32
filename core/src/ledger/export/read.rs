//! Reading an export back for [`verify_export`]: the format is detected from the first bytes,
//! and the entries are streamed through the checker (a JSON export through a serde seed, so it
//! is never loaded whole).

use super::checker::Checker;
use super::{CSV_COLUMNS, ExportEntry, ExportHeader, ExternalReport};
use crate::error::{Error, Result};
use crate::ledger::signer::Verifier;
use std::io::BufRead;

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

fn csv_err(e: csv::Error) -> Error {
    Error::invalid(format!("CSV: {e}"))
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
