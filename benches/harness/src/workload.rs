//! The deterministic workload both suites use: ledger entries, fact texts whose words follow a
//! known spread, and search queries that hit them.

use cortex_core::{AgentMemory, NewEntry, NewFact, Result};

/// Distinct topic words; each is in about 1/50 of the facts.
pub const TOPICS: u64 = 50;
/// Distinct rarer words; each fact has six of them.
pub const WORDS: u64 = 5000;
/// The query repeated for the warm (cached) runs and the throughput runs.
pub const WARM_QUERY: &str = "topic7 w42";

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The text of fact `i`: its number, one topic word and six rarer words.
pub fn fact_text(i: u64) -> String {
    let x = mix(i);
    let mut s = format!("agent note {i} about topic{}", x % TOPICS);
    for k in 0..6u64 {
        s.push_str(&format!(" w{}", mix(x ^ k) % WORDS));
    }
    s
}

/// A search no earlier request asked (for `n` below [`WORDS`]; callers offset runs apart).
pub fn uncached_query(n: u64) -> String {
    format!("topic{} w{}", n % TOPICS, (n * 7919) % WORDS)
}

/// Stores facts `0..n` ([`fact_text`], spread over ten projects) in transactions of 10,000.
pub fn store_facts(memory: &AgentMemory, n: u64) -> Result<()> {
    let mut done = 0;
    while done < n {
        let k = 10_000.min(n - done);
        let batch: Vec<NewFact> = (done..done + k)
            .map(|i| NewFact::new(format!("project{}", i % 10), fact_text(i)))
            .collect();
        memory.store_facts(&batch)?;
        done += k;
    }
    Ok(())
}

/// `n` ledger entries numbered from `from`, as the ledger suite appends them.
pub fn entries(from: u64, n: u64) -> Vec<NewEntry> {
    (from..from + n)
        .map(|i| {
            NewEntry::new(
                "bench",
                // Not `fact.store`: that action is the agent memory's (and the same length).
                "bench.fact",
                format!(
                    r#"{{"fact_id":{i},"content":"benchmark fact number {i}","confidence":0.9}}"#
                ),
            )
        })
        .collect()
}

/// `n` audit entries numbered from `from`, as the MCP suite seeds its ledger.
pub fn audit_entries(from: u64, n: u64) -> Vec<NewEntry> {
    (from..from + n)
        .map(|i| {
            NewEntry::new(
                "bench",
                "audit.event",
                format!(r#"{{"event":{i},"detail":"benchmark ledger entry {i}"}}"#),
            )
        })
        .collect()
}
