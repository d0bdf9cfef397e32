//! The tools, resources and prompts each feature area registers on the server: [`ledger`]
//! (checkpoint, verify, proof, the latest checkpoint resource, the audit briefing), [`memory`]
//! (store, search, recall, vote, deprecate, history, the project facts template, the project
//! briefing), and the server's own `cortex_metrics` tool.

pub mod ledger;
pub mod memory;

use crate::metrics::Metrics;
use crate::registry::{Exec, Tool};
use serde_json::json;
use std::sync::Arc;

/// The `cortex_metrics` tool: a snapshot of `metrics`.
pub(crate) fn metrics_tool(metrics: Arc<Metrics>) -> Tool {
    let counts = json!({"type": "object", "additionalProperties": {
        "type": "object", "additionalProperties": {"type": "integer"}}});
    Tool {
        name: "cortex_metrics".into(),
        title: "Server metrics".into(),
        description: "This server's metrics: requests and errors per transport and method or \
                      tool, open connections, the request latency histogram, and query cache \
                      hits, misses and hit rate."
            .into(),
        input_schema: json!({"type": "object", "additionalProperties": false, "properties": {}}),
        output_schema: json!({"type": "object", "required": ["requests", "errors",
            "active_connections", "latency_count", "latency_sum_seconds", "latency_buckets",
            "cache_hits", "cache_misses", "cache_hit_rate"], "properties": {
            "requests": counts, "errors": counts,
            "active_connections": {"type": "object",
                "additionalProperties": {"type": "integer"}},
            "latency_count": {"type": "integer", "minimum": 0},
            "latency_sum_seconds": {"type": "number", "minimum": 0},
            "latency_buckets": {"type": "array", "description": "cumulative counts per upper \
                bound in seconds", "items": {"type": "object", "required": ["le", "count"],
                "properties": {"le": {"type": "number"}, "count": {"type": "integer"}}}},
            "cache_hits": {"type": "integer", "minimum": 0},
            "cache_misses": {"type": "integer", "minimum": 0},
            "cache_hit_rate": {"type": "number", "minimum": 0, "maximum": 1}}}),
        read_only: true,
        idempotent: false,
        exec: Exec::Inline,
        access: cortex_core::access::Role::Read,
        run: Arc::new(move |_, _| {
            serde_json::to_value(metrics.snapshot()).map_err(|e| {
                cortex_core::error::Error::backend(format!("cannot encode the metrics: {e}"))
            })
        }),
    }
}
