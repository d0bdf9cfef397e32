//! Writing an export: the header (checkpoint note and covering subtree hashes) and the entries,
//! in any of the three formats.

use super::{
    CSV_COLUMNS, EXPORT_FORMAT, ExportEntry, ExportFormat, ExportHeader, ExportSummary,
    OpeningSource, SubtreeHash,
};
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::ledger::checkpoint::Checkpoint;
use crate::ledger::merkle::covering_subtrees;
use crate::ledger::note::SignedNote;
use crate::ledger::tiles::TileNodes;
use std::io::Write;

/// Writes an export of entries `from..=to` (default: everything the latest checkpoint covers),
/// with no openings (see [`write_export_with`]).
pub fn write_export(
    ledger: &Ledger,
    format: ExportFormat,
    from: Option<u64>,
    to: Option<u64>,
    out: &mut dyn Write,
    progress: &dyn Fn(u64),
) -> Result<ExportSummary> {
    write_export_with(ledger, format, from, to, out, progress, &|_| Ok(None))
}

/// [`write_export`], carrying beside each entry the opening `openings` gives for it (the
/// content a sealed `fact.store` entry commits to, and its salt; FORMATS.md §15.3).
pub fn write_export_with(
    ledger: &Ledger,
    format: ExportFormat,
    from: Option<u64>,
    to: Option<u64>,
    out: &mut dyn Write,
    progress: &dyn Fn(u64),
    openings: OpeningSource<'_>,
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
        signatures: cp.extra_signatures.clone(),
        receipts: cp.receipts.clone(),
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
            opening: openings(&r.entry)?,
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
                if let Some(o) = &e.opening {
                    let json =
                        serde_json::to_string(o).map_err(|e| Error::backend(e.to_string()))?;
                    write_csv_row(&mut line, &["opening", &idx, "", "", "", &json, "", ""]);
                }
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
