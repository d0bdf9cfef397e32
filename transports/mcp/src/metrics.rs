//! Serving metrics shared by the transports and the MCP server: request counts per transport and
//! method (or tool), errors, a latency histogram, active connections and cache hits. One
//! [`Metrics`] value is fed by every layer and rendered as Prometheus text (`/metrics`) or read as
//! a [`MetricsSnapshot`] (the metrics MCP tool). Hand-written so that core keeps no metrics
//! dependency; the text follows the Prometheus exposition format 0.0.4.

use cortex_core::ledger::anchoring::AnchorStatus;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets; `+Inf` is implied.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

/// Gauges read when the metrics are rendered (the ledger's size, its checkpoint's age): each
/// `(name, help, value)`.
pub type GaugeFn = std::sync::Arc<dyn Fn() -> Vec<(String, String, f64)> + Send + Sync>;

/// One route's or tool's latency histogram.
#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters, histograms and gauges for one serving process.
#[derive(Default)]
pub struct Metrics {
    /// Per transport, then per route, method or tool: the count of requests and their latency
    /// histogram (one lock per request, no allocation once a name is known).
    per_route: Mutex<BTreeMap<String, BTreeMap<String, Histogram>>>,
    gauges: Mutex<Option<GaugeFn>>,
    errors: Mutex<BTreeMap<(String, String), u64>>,
    active: Mutex<BTreeMap<String, i64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_nanos: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    anchors: Mutex<Vec<AnchorStatus>>,
}

/// A point-in-time copy of [`Metrics`], for reporting as JSON.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MetricsSnapshot {
    /// Requests per `transport` then per method or tool.
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// Errors per `transport` then per method or tool.
    pub errors: BTreeMap<String, BTreeMap<String, u64>>,
    /// Open connections (streams, sockets, in-flight requests) per transport.
    pub active_connections: BTreeMap<String, i64>,
    /// Requests timed in the latency histogram.
    pub latency_count: u64,
    /// Sum of the timed latencies, in seconds.
    pub latency_sum_seconds: f64,
    /// The latency histogram: cumulative counts per upper bound ([`LATENCY_BUCKETS`]).
    pub latency_buckets: Vec<LatencyBucket>,
    /// Cache hits.
    pub cache_hits: u64,
    /// Cache misses.
    pub cache_misses: u64,
    /// Hits over lookups, or 0 when there were none.
    pub cache_hit_rate: f64,
    /// Where each anchor stands (lag behind the newest checkpoint, failures).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anchors: Vec<AnchorStatus>,
}

/// One bucket of the latency histogram in a [`MetricsSnapshot`].
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct LatencyBucket {
    /// Upper bound, in seconds.
    pub le: f64,
    /// Requests that took at most `le` (cumulative).
    pub count: u64,
}

/// Decrements a transport's active-connection gauge when dropped.
#[derive(Debug)]
pub struct ConnectionGuard<'a> {
    metrics: &'a Metrics,
    transport: String,
}

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.metrics.add_active(&self.transport, -1);
    }
}

/// Like [`ConnectionGuard`] but owning an `Arc`, for streams that outlive a borrow.
#[derive(Debug)]
pub struct OwnedConnectionGuard {
    metrics: std::sync::Arc<Metrics>,
    transport: String,
}

impl Drop for OwnedConnectionGuard {
    fn drop(&mut self) {
        self.metrics.add_active(&self.transport, -1);
    }
}

fn bump(map: &Mutex<BTreeMap<(String, String), u64>>, transport: &str, name: &str) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    match map.get_mut(&(transport.to_owned(), name.to_owned())) {
        Some(n) => *n += 1,
        None => {
            map.insert((transport.to_owned(), name.to_owned()), 1);
        }
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Sets the gauges read at each rendering (replacing any set before).
    pub fn set_gauges(&self, gauges: GaugeFn) {
        *self.gauges.lock().unwrap_or_else(|e| e.into_inner()) = Some(gauges);
    }

    /// Empty metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request on `transport` for `name` (a JSON-RPC method or tool name), times it,
    /// and counts an error when `ok` is false.
    pub fn record_request(&self, transport: &str, name: &str, elapsed: Duration, ok: bool) {
        self.record_operation(transport, name, elapsed, ok);
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Counts and times one operation inside a request (a tool run for a REST route) under
    /// `label` and `name`, without counting it again in the whole-request histogram.
    pub fn record_operation(&self, label: &str, name: &str, elapsed: Duration, ok: bool) {
        let (transport, secs) = (label, elapsed.as_secs_f64());
        if !ok {
            bump(&self.errors, transport, name);
        }
        let mut routes = self.per_route.lock().unwrap_or_else(|e| e.into_inner());
        let names = match routes.get_mut(transport) {
            Some(m) => m,
            None => routes.entry(transport.to_owned()).or_default(),
        };
        let h = match names.get_mut(name) {
            Some(h) => h,
            None => names.entry(name.to_owned()).or_default(),
        };
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(h.buckets.iter_mut()) {
            if secs <= *bound {
                *bucket += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Counts an error that is not tied to a timed request (a rejected connection, a bad frame).
    pub fn record_error(&self, transport: &str, name: &str) {
        bump(&self.errors, transport, name);
    }

    /// Counts one cache lookup.
    pub fn record_cache(&self, hit: bool) {
        let counter = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Replaces the anchor gauges with the latest statuses (the anchoring thread's).
    pub fn set_anchor_statuses(&self, statuses: Vec<AnchorStatus>) {
        *self.anchors.lock().unwrap_or_else(|e| e.into_inner()) = statuses;
    }

    fn add_active(&self, transport: &str, delta: i64) {
        let mut map = self.active.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(transport.to_owned()).or_insert(0) += delta;
    }

    /// Marks a connection open on `transport` until the guard is dropped.
    pub fn connection(&self, transport: &str) -> ConnectionGuard<'_> {
        self.add_active(transport, 1);
        ConnectionGuard {
            metrics: self,
            transport: transport.to_owned(),
        }
    }

    /// Like [`Metrics::connection`], for guards that move into spawned tasks or streams.
    pub fn owned_connection(self: &std::sync::Arc<Self>, transport: &str) -> OwnedConnectionGuard {
        self.add_active(transport, 1);
        OwnedConnectionGuard {
            metrics: self.clone(),
            transport: transport.to_owned(),
        }
    }

    /// A copy of the current values.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let nest = |map: &Mutex<BTreeMap<(String, String), u64>>| {
            let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
            for ((t, n), v) in map.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                out.entry(t.clone()).or_default().insert(n.clone(), *v);
            }
            out
        };
        let hits = self.cache_hits.load(Ordering::Relaxed);
        let misses = self.cache_misses.load(Ordering::Relaxed);
        MetricsSnapshot {
            requests: self
                .per_route
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(t, names)| {
                    let counts = names.iter().map(|(n, h)| (n.clone(), h.count)).collect();
                    (t.clone(), counts)
                })
                .collect(),
            errors: nest(&self.errors),
            active_connections: self
                .active
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            latency_count: self.latency_count.load(Ordering::Relaxed),
            latency_sum_seconds: self.latency_sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            latency_buckets: LATENCY_BUCKETS
                .iter()
                .zip(&self.latency_buckets)
                .map(|(le, n)| LatencyBucket {
                    le: *le,
                    count: n.load(Ordering::Relaxed),
                })
                .collect(),
            cache_hits: hits,
            cache_misses: misses,
            cache_hit_rate: if hits + misses == 0 {
                0.0
            } else {
                hits as f64 / (hits + misses) as f64
            },
            anchors: self
                .anchors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let counters = |out: &mut String,
                        name: &str,
                        help: &str,
                        map: &Mutex<BTreeMap<(String, String), u64>>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for ((t, n), v) in map.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                let _ = writeln!(
                    out,
                    "{name}{{transport=\"{}\",method=\"{}\"}} {v}",
                    escape_label(t),
                    escape_label(n)
                );
            }
        };
        let _ = writeln!(
            out,
            "# HELP cortex_requests_total Requests handled, per transport and JSON-RPC method or tool."
        );
        let _ = writeln!(out, "# TYPE cortex_requests_total counter");
        for (t, names) in self
            .per_route
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            for (n, h) in names {
                let _ = writeln!(
                    out,
                    "cortex_requests_total{{transport=\"{}\",method=\"{}\"}} {}",
                    escape_label(t),
                    escape_label(n),
                    h.count
                );
            }
        }
        counters(
            &mut out,
            "cortex_errors_total",
            "Requests that ended in an error, per transport and method or tool.",
            &self.errors,
        );
        let _ = writeln!(
            out,
            "# HELP cortex_request_duration_seconds Time to answer a request."
        );
        let _ = writeln!(out, "# TYPE cortex_request_duration_seconds histogram");
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "cortex_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "cortex_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "cortex_request_duration_seconds_sum {}",
            self.latency_sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
        );
        let _ = writeln!(out, "cortex_request_duration_seconds_count {count}");
        let _ = writeln!(
            out,
            "# HELP cortex_route_duration_seconds Time to answer, per transport and route, \
             JSON-RPC method or tool."
        );
        let _ = writeln!(out, "# TYPE cortex_route_duration_seconds histogram");
        let routes = self.per_route.lock().unwrap_or_else(|e| e.into_inner());
        for (t, n, h) in routes
            .iter()
            .flat_map(|(t, names)| names.iter().map(move |(n, h)| (t, n, h)))
        {
            let labels = format!(
                "transport=\"{}\",method=\"{}\"",
                escape_label(t),
                escape_label(n)
            );
            for (bound, count) in LATENCY_BUCKETS.iter().zip(&h.buckets) {
                let _ = writeln!(
                    out,
                    "cortex_route_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "cortex_route_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "cortex_route_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "cortex_route_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        drop(routes);
        let gauges = self
            .gauges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(read) = gauges {
            for (name, help, value) in read() {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} gauge");
                let _ = writeln!(out, "{name} {value}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP cortex_active_connections Open connections, streams and in-flight requests."
        );
        let _ = writeln!(out, "# TYPE cortex_active_connections gauge");
        for (t, v) in self.active.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(
                out,
                "cortex_active_connections{{transport=\"{}\"}} {v}",
                escape_label(t)
            );
        }
        let _ = writeln!(out, "# HELP cortex_cache_hits_total Query cache hits.");
        let _ = writeln!(out, "# TYPE cortex_cache_hits_total counter");
        let _ = writeln!(
            out,
            "cortex_cache_hits_total {}",
            self.cache_hits.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP cortex_cache_misses_total Query cache misses.");
        let _ = writeln!(out, "# TYPE cortex_cache_misses_total counter");
        let _ = writeln!(
            out,
            "cortex_cache_misses_total {}",
            self.cache_misses.load(Ordering::Relaxed)
        );
        let (hits, misses) = (
            self.cache_hits.load(Ordering::Relaxed),
            self.cache_misses.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP cortex_cache_hit_ratio Cache hits over lookups since start (0 before any)."
        );
        let _ = writeln!(out, "# TYPE cortex_cache_hit_ratio gauge");
        let ratio = if hits + misses == 0 {
            0.0
        } else {
            hits as f64 / (hits + misses) as f64
        };
        let _ = writeln!(out, "cortex_cache_hit_ratio {ratio}");
        let anchors = self.anchors.lock().unwrap_or_else(|e| e.into_inner());
        type Gauge = fn(&AnchorStatus) -> u64;
        let gauges: [(&str, &str, Gauge); 3] = [
            (
                "cortex_anchor_lag_entries",
                "Entries signed in checkpoints that the anchor holds no receipt for yet.",
                |a| a.lag_entries,
            ),
            (
                "cortex_anchor_lag_checkpoints",
                "Checkpoints newer than the last one the anchor holds a receipt for.",
                |a| a.lag_checkpoints,
            ),
            (
                "cortex_anchor_failures",
                "Failed submissions to the anchor since its last success.",
                |a| u64::from(a.failures),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for a in anchors.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{kind=\"{}\",target=\"{}\"}} {}",
                    escape_label(&a.kind),
                    escape_label(&a.target),
                    value(a)
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = std::sync::Arc::new(Metrics::new());
        m.record_request("http", "tools/call", Duration::from_micros(300), true);
        m.record_request("http", "tools/call", Duration::from_millis(3), false);
        m.record_cache(true);
        let guard = m.owned_connection("ws");
        let text = m.render_prometheus();
        assert!(text.contains("cortex_requests_total{transport=\"http\",method=\"tools/call\"} 2"));
        assert!(text.contains("cortex_errors_total{transport=\"http\",method=\"tools/call\"} 1"));
        assert!(text.contains("cortex_request_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("cortex_request_duration_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("cortex_active_connections{transport=\"ws\"} 1"));
        drop(guard);
        assert_eq!(m.snapshot().active_connections["ws"], 0);
        assert_eq!(m.snapshot().cache_hit_rate, 1.0);
    }
}
