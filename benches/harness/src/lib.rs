//! `cortex-bench`: the benchmark harness behind `cortex benchmark`. It measures the assembled
//! system on this machine against the bars of PRODUCT.md §7 and prints the figures; it never
//! asserts a timing (tests check that a tiny run prints every figure, not the values).
//!
//! - [`ledger_suite`]: appends (batched, single, 64 group-committed writers), full verify,
//!   proofs, exports and their offline check, and the agent memory's stores and searches, on
//!   whatever store the caller opens per ledger (the binary maps `--backend` to a store plugin);
//! - [`mcp_suite`]: a `cortex mcp start` child process on a seeded ledger, driven by the lean
//!   clients of [`client`] (stdio and Streamable HTTP), plus `wrk` when it is on `PATH`;
//! - [`anchors_suite`]: checkpoint latency per signer set (sign + store) and `anchor_pending`
//!   latency per anchor, with the signers and anchors the binary hands it and the loopback
//!   stand-ins of [`peers`] (an `openssl ts -reply` authority, a Rekor v2 log);
//! - [`workload`]: the deterministic entries, facts and queries the suites use.
//!
//! The harness depends on no backend, transport, signer or anchor plugin crate: the binary hands
//! it stores, signers, anchors and the path of its own executable, so the figures are those of
//! the `cortex` a user runs.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod anchors_suite;
pub mod client;
pub mod ledger_suite;
pub mod mcp_suite;
pub mod peers;
pub mod quality_suite;
pub mod rest_suite;
pub mod search_suite;
pub mod workload;

use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Instant;

/// The figures of one run: printed as they come (for humans) and kept as JSON rows.
#[derive(Debug, Default)]
pub struct Report {
    /// One JSON object per figure: name, value, unit, bar, met, detail.
    pub rows: Vec<Value>,
    /// Print nothing; the caller prints `rows` as JSON at the end.
    pub json: bool,
}

impl Report {
    /// A report that prints each figure unless `json`.
    pub fn new(json: bool) -> Self {
        Report {
            rows: Vec::new(),
            json,
        }
    }

    /// Prints a line of text for humans (nothing in JSON mode).
    pub fn note(&self, text: &str) {
        if !self.json {
            println!("{text}");
        }
    }

    /// Records one figure; `met` is whether it reaches its bar (`None`: no bar).
    pub fn report(
        &mut self,
        name: &str,
        value: f64,
        unit: &str,
        bar: &str,
        met: Option<bool>,
        detail: String,
    ) {
        if !self.json {
            let mark = match met {
                Some(true) => "✓",
                Some(false) => "✗",
                None => " ",
            };
            println!(
                "{mark} {name:<44} {:>14} {unit:<10} bar {bar:<14} {detail}",
                fmt_val(value)
            );
        }
        self.rows.push(json!({"name": name, "value": value, "unit": unit, "bar": bar, "met": met, "detail": detail}));
    }
}

fn fmt_val(v: f64) -> String {
    if v >= 1000.0 {
        num(v as u64)
    } else {
        format!("{v:.2}")
    }
}

/// `1234567` as `1,234,567`.
pub fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Items per second since `t`.
pub fn rate(n: u64, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64().max(1e-9)
}

/// The `p` quantile (0 to 1) of `v`, which it sorts.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Removes a scratch directory when dropped (the suites leave nothing behind).
#[derive(Debug)]
pub struct Cleanup(pub PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Cores the suites run on, for the header lines.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
