//! Human and JSON output. Human lines go to stdout in the seed's style (`✓ …`); errors go to
//! stderr; `--json` prints one JSON document per command.

use cortex_core::Error;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// Prints a JSON value on stdout.
pub fn json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Prints an error: `error: …` for humans, `{"error": …}` on stdout for machines.
pub fn error(as_json: bool, e: &Error) {
    if as_json {
        json(&serde_json::json!({
            "ok": false,
            "error": { "kind": e.kind().as_str(), "message": e.to_string() }
        }));
    } else {
        eprintln!("✗ error: {e}");
    }
}

/// Warns on stderr (in both output modes) that an append committed but its automatic
/// checkpoint was not signed.
pub fn checkpoint_warning(e: Option<&str>) {
    if let Some(e) = e {
        eprintln!(
            "⚠ warning: the entries are committed, but the automatic checkpoint was not signed: {e}"
        );
    }
}

/// `12345` → `12,345`.
pub use cortex_bench::num;

/// A progress bar on stderr, shown only for humans on a terminal.
pub fn progress(as_json: bool, len: u64, what: &str) -> ProgressBar {
    progress_over(as_json, len, 50_000, what)
}

/// A progress bar on stderr, shown only for humans on a terminal and for at least `min` steps.
pub fn progress_over(as_json: bool, len: u64, min: u64, what: &str) -> ProgressBar {
    if as_json || !std::io::stderr().is_terminal() || len < min {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_owned());
    pb
}

/// One finding for humans: `kind at index I [table fact F agent "A" column C]: message`.
pub fn violation(v: &cortex_core::ledger::verify::Violation) -> String {
    let at = v
        .index
        .map(|i| format!(" at index {i}"))
        .unwrap_or_default();
    let row = v.memory.as_ref().map_or(String::new(), |m| {
        let mut r = format!(" [{}", m.table);
        if let Some(f) = m.fact_id {
            r.push_str(&format!(" fact {f}"));
        }
        if let Some(a) = &m.agent {
            r.push_str(&format!(" agent {a:?}"));
        }
        if let Some(c) = m.column {
            r.push_str(&format!(" column {c}"));
        }
        r.push(']');
        r
    });
    format!("{}{at}{row}: {}", v.kind.name(), v.message)
}

/// One anchor's standing, for humans: `witness http://…: anchored up to checkpoint 3000`.
pub fn anchor_status(a: &cortex_core::ledger::anchoring::AnchorStatus) -> String {
    let head = format!("{} {}", a.kind, a.target);
    let upto = a.anchored_size.map_or_else(
        || "no receipt yet".to_owned(),
        |s| format!("anchored up to checkpoint {s}"),
    );
    match a.status {
        "anchored" => format!("✓ {head}: {upto}"),
        "failing" => format!(
            "! {head}: failing ({} tries; last: {}); {upto}; {} entries in {} checkpoint(s) wait",
            a.failures,
            a.last_error.as_deref().unwrap_or("?"),
            a.lag_entries,
            a.lag_checkpoints
        ),
        "missing" => format!(
            "! {head}: missing: no checkpoint has its receipt and none was submitted (run `cortex ledger anchor`)"
        ),
        _ => format!(
            "… {head}: pending; {upto}; {} entries in {} checkpoint(s) wait",
            a.lag_entries, a.lag_checkpoints
        ),
    }
}
