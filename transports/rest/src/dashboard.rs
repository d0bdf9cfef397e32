//! The dashboard: a page at `/` (plain HTML, CSS and JavaScript built into the binary, no CDN,
//! charts drawn as inline SVG) and the protected `GET /v1/dashboard` summary it reads with the
//! API key the person types in (kept in the tab's `sessionStorage`, sent as
//! `Authorization: Bearer`; a read key is enough).
//!
//! The summary is one JSON object read in one blocking task: the ledger's status
//! ([`read_status`]), the newest checkpoints with their signature and receipt counts, the last
//! verification runs, the facts per project ([`AgentMemory::project_sizes`]), appends per
//! minute over the last hour (from the newest entries' timestamps) and the server's request
//! metrics (the page keeps its own latency series from their differences between polls).
//!
//! [`AgentMemory::project_sizes`]: cortex_core::memory::AgentMemory::project_sizes

use crate::Service;
use crate::routes::{error_response, status_of};
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration as Span, NaiveDateTime, Timelike, Utc};
use cortex_core::access::{Principal, Role};
use cortex_core::ledger::entry::format_timestamp;
use cortex_core::ledger::status::read_status;
use cortex_core::{CheckpointRecord, Error, SignedNote};
use serde_json::{Value, json};
use std::sync::Arc;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("../assets/dashboard.css");
const FAVICON_SVG: &str = include_str!("../assets/favicon.svg");

/// Checkpoints listed, newest first.
pub const MAX_CHECKPOINTS: usize = 20;
/// Verification runs listed, newest first.
pub const MAX_VERIFICATIONS: usize = 10;
/// Projects listed, largest first.
pub const MAX_PROJECTS: usize = 20;
/// Minutes in the appends series (one bucket a minute, the current minute last).
pub const APPEND_MINUTES: usize = 60;
/// Most entries read for the appends series; past it the series is marked incomplete.
pub const MAX_SCANNED: u64 = 50_000;
const SCAN_CHUNK: u64 = 1_000;
/// Violations kept in each listed verification run's details (the counts cover all).
const VIOLATIONS_SHOWN: usize = 5;

/// Headers of the page and its assets: no framing, scripts and styles from this server only,
/// no referrer (the page handles an API key).
fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The public page: `/` and its assets under `/dashboard/`. It holds no data; everything it
/// shows comes from `GET /v1/dashboard` with the person's key.
pub fn page_router() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/dashboard/dashboard.js",
            get(|| async { asset(DASHBOARD_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/dashboard/dashboard.css",
            get(|| async { asset(DASHBOARD_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/dashboard/favicon.svg",
            get(|| async { asset(FAVICON_SVG, "image/svg+xml") }),
        )
}

/// `GET /v1/dashboard` (read role), to mount behind the API-key layers.
pub fn api_router(svc: Arc<Service>) -> Router {
    Router::new().route(
        "/v1/dashboard",
        get(move |principal: Option<axum::Extension<Principal>>| {
            let svc = svc.clone();
            async move {
                if let Some(p) = principal
                    && let Err(e) = p.0.require(Role::Read, "the dashboard")
                {
                    return failure(&e);
                }
                match tokio::task::spawn_blocking(move || summary(&svc)).await {
                    Ok(Ok(v)) => {
                        let mut r = v.to_string().into_response();
                        r.headers_mut().insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        );
                        r
                    }
                    Ok(Err(e)) => failure(&e),
                    Err(_) => failure(&Error::backend("the dashboard read failed unexpectedly")),
                }
            }
        }),
    )
}

fn failure(e: &Error) -> Response {
    error_response(status_of(e.kind()), e.kind(), &e.to_string())
}

/// The whole `/v1/dashboard` body.
pub fn summary(svc: &Service) -> Result<Value, Error> {
    let now = Utc::now();
    let status = read_status(&svc.ledger, &svc.anchors)?;
    let store = svc.ledger.store();
    let checkpoints = store.checkpoints()?;
    let listed: Vec<Value> = checkpoints
        .iter()
        .rev()
        .take(MAX_CHECKPOINTS)
        .map(checkpoint)
        .collect();
    let verifications: Vec<Value> = store
        .integrity_checks(MAX_VERIFICATIONS)?
        .into_iter()
        .map(|c| {
            let mut details =
                serde_json::from_str::<Value>(&c.details).unwrap_or(Value::String(c.details));
            if let Some(list) = details.get_mut("violations").and_then(Value::as_array_mut) {
                list.truncate(VIOLATIONS_SHOWN);
            }
            json!({"check_type": c.check_type, "status": c.status, "started_at": c.started_at,
                   "completed_at": c.completed_at, "details": details})
        })
        .collect();
    let mut projects = svc.memory.project_sizes()?;
    let facts: u64 = projects.iter().map(|p| p.facts).sum();
    let project_count = projects.len();
    projects.sort_by(|a, b| b.facts.cmp(&a.facts).then(a.project.cmp(&b.project)));
    projects.truncate(MAX_PROJECTS);
    let appends = appends(svc, now, status.size)?;
    let metrics = svc.metrics.snapshot();
    let total = |m: &std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, u64>,
    >| { m.values().flat_map(|t| t.values()).sum::<u64>() };
    Ok(json!({
        "generated_at": format_timestamp(now),
        "ledger": status,
        "checkpoint_count": checkpoints.len(),
        "checkpoints": listed,
        "verifications": verifications,
        "memory": {"facts": facts, "project_count": project_count, "projects": projects},
        "appends": appends,
        "requests": {
            "count": metrics.latency_count,
            "errors": total(&metrics.errors),
            "latency_sum_seconds": metrics.latency_sum_seconds,
            "latency_buckets": metrics.latency_buckets,
        },
    }))
}

fn checkpoint(c: &CheckpointRecord) -> Value {
    let signers: Vec<String> = SignedNote::parse(c.note.as_bytes())
        .map(|n| n.signatures.into_iter().map(|s| s.name).collect())
        .unwrap_or_default();
    json!({
        "size": c.size,
        "range_start": c.range_start,
        "range_count": c.range_count,
        "root": c.root.to_base64(),
        "created_at": c.created_at,
        "signatures": signers.len() + c.extra_signatures.len(),
        "note_signers": signers,
        "detached": c.extra_signatures.iter()
            .map(|s| json!({"scheme": s.scheme, "key_name": s.key_name}))
            .collect::<Vec<_>>(),
        "receipts": c.receipts.iter()
            .map(|r| json!({"anchor": r.anchor, "target": r.target, "created_at": r.created_at}))
            .collect::<Vec<_>>(),
    })
}

fn parse_canonical(ts: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(ts.get(..26)?, "%Y-%m-%dT%H:%M:%S%.6f")
        .ok()
        .map(|t| t.and_utc())
}

/// Appends per minute over the last [`APPEND_MINUTES`] minutes, the current minute last,
/// counted from the newest entries backwards in chunks until a chunk reaches an entry older
/// than the window (entry timestamps never go back, as far as the host clock does not) or
/// [`MAX_SCANNED`] entries were read.
fn appends(svc: &Service, now: DateTime<Utc>, size: u64) -> Result<Value, Error> {
    let minute = now
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(now);
    let start = minute - Span::minutes(APPEND_MINUTES as i64 - 1);
    let start_text = format_timestamp(start);
    let mut counts = vec![0u64; APPEND_MINUTES];
    let (mut end, mut scanned, mut complete) = (size, 0u64, true);
    while end > 0 {
        if scanned >= MAX_SCANNED {
            complete = false;
            break;
        }
        let from = end.saturating_sub(SCAN_CHUNK);
        let mut reached_older = false;
        svc.ledger.store().scan_entries(from..end, &mut |r| {
            scanned += 1;
            let ts = r.entry.timestamp;
            // Canonical timestamps are fixed-width: text order is time order.
            if ts < start_text.as_str() {
                reached_older = true;
            } else if let Some(t) = parse_canonical(ts) {
                let bucket = ((t - start).num_seconds() / 60).clamp(0, APPEND_MINUTES as i64 - 1);
                counts[bucket as usize] += 1;
            }
            Ok(())
        })?;
        if reached_older {
            break;
        }
        end = from;
    }
    Ok(json!({
        "start": start_text,
        "bucket_seconds": 60,
        "counts": counts,
        "scanned": scanned,
        "complete": complete,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_timestamps_parse() {
        let t = parse_canonical("2024-05-06T07:08:09.123456Z").unwrap();
        assert_eq!(format_timestamp(t), "2024-05-06T07:08:09.123456Z");
        assert!(parse_canonical("yesterday").is_none());
    }

    #[test]
    fn the_page_refers_only_to_its_own_assets() {
        for id in [
            "api-key",
            "ledger-size",
            "verify-button",
            "verify-result",
            "appends-chart",
            "latency-chart",
        ] {
            assert!(
                INDEX_HTML.contains(&format!("id=\"{id}\"")),
                "index.html lacks #{id}"
            );
        }
        // Nothing loaded from elsewhere (the SVG namespace is a name, not a fetch).
        for text in [INDEX_HTML, DASHBOARD_JS, DASHBOARD_CSS, FAVICON_SVG] {
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
    }
}
