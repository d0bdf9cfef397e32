//! The query cache of the MCP server: results of read-only tools (`cortex_search`,
//! `cortex_recall`) keyed by tool and normalized arguments, each tagged with the store's
//! memory version read *before* the query ran.
//!
//! Exactness: every memory mutation bumps the version in the same transaction as the change, and
//! a lookup reads the current version from the store (one indexed read) and serves only an entry
//! tagged with exactly that version. After an acknowledged write, from this process or any other
//! sharing the database, the version differs from every entry cached before the write, so the
//! read runs again and sees the write. An entry computed while a write raced the query is tagged
//! with the older version and is therefore never served after the write is visible.
//!
//! Time: results that depend on "now" (search without `as_of`, recall) also change when a fact's
//! `valid_from` or `valid_until` passes, which is not a write. Such entries expire after
//! [`QueryCache::now_ttl`] (default [`DEFAULT_NOW_TTL`]), and never outlive the earliest
//! `valid_until` among the facts they hold; queries with an explicit `as_of` depend only on the
//! store and are exact without a time limit.
//!
//! Storage is [`quick_cache`] (S3-FIFO eviction, sharded, bounded by entry count).

use cortex_core::error::Result;
use quick_cache::sync::Cache;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Entries kept when the builder does not say.
pub const DEFAULT_CAPACITY: usize = 4096;
/// How long a result computed "as of now" may be served (see the module docs).
pub const DEFAULT_NOW_TTL: Duration = Duration::from_secs(1);

/// The normalized cache key of one call, or `None` when the call must not be cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// Normalized arguments (the tool name is added by the server).
    pub key: String,
    /// True if the result depends on the current time (bounded by [`QueryCache::now_ttl`]).
    pub now_relative: bool,
}

/// Computes a tool call's [`CacheKey`] from its validated arguments.
pub type CacheKeyFn = Arc<dyn Fn(&Map<String, Value>) -> Option<CacheKey> + Send + Sync>;

/// Reads the store's current memory version (see [`cortex_core::FactStore::memory_version`]).
pub type VersionFn = Arc<dyn Fn() -> Result<u64> + Send + Sync>;

/// A cached result, kept as the JSON text the server sends (no clone or serialization on a
/// hit).
#[derive(Debug)]
struct Entry {
    version: u64,
    expires: Option<Instant>,
    result: Arc<str>,
}

/// A bounded map from (tool, normalized arguments) to a tool result and its memory version.
pub struct QueryCache {
    entries: Cache<String, Arc<Entry>>,
    now_ttl: Duration,
}

impl std::fmt::Debug for QueryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryCache")
            .field("len", &self.entries.len())
            .field("capacity", &self.entries.capacity())
            .field("now_ttl", &self.now_ttl)
            .finish()
    }
}

impl QueryCache {
    /// A cache of at most `capacity` results; "now" results live at most `now_ttl`.
    pub fn new(capacity: usize, now_ttl: Duration) -> Self {
        QueryCache {
            entries: Cache::new(capacity.max(1)),
            now_ttl,
        }
    }

    /// How long a result computed "as of now" may be served.
    pub fn now_ttl(&self) -> Duration {
        self.now_ttl
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.len() == 0
    }

    /// The result text cached under `key` for exactly memory `version`, if it has not
    /// expired.
    pub fn get_text(&self, key: &str, version: u64) -> Option<Arc<str>> {
        let entry = self.entries.get(key)?;
        if entry.version != version || entry.expires.is_some_and(|t| Instant::now() >= t) {
            return None;
        }
        Some(entry.result.clone())
    }

    /// [`QueryCache::get_text`], parsed.
    pub fn get(&self, key: &str, version: u64) -> Option<Value> {
        serde_json::from_str(&self.get_text(key, version)?).ok()
    }

    /// Caches `result`, computed after memory `version` was read, and returns its text. An
    /// entry of a newer version is kept (a slow reader must not replace a fresher result).
    pub fn insert(&self, key: String, version: u64, now_relative: bool, result: Value) -> Arc<str> {
        let text: Arc<str> = result.to_string().into();
        if let Some(old) = self.entries.get(&key)
            && old.version > version
        {
            return text;
        }
        let expires = now_relative.then(|| {
            let mut at = Instant::now() + self.now_ttl;
            if let Some(until) = earliest_valid_until(&result) {
                at = at.min(until);
            }
            at
        });
        self.entries.insert(
            key,
            Arc::new(Entry {
                version,
                expires,
                result: text.clone(),
            }),
        );
        text
    }

    /// Drops every entry.
    pub fn clear(&self) {
        self.entries.clear();
    }
}

/// The instant the first fact in a result stops being valid, if that is in the future and
/// sooner than a day away (facts are found under `structuredContent.facts` or `.hits[].fact`).
fn earliest_valid_until(result: &Value) -> Option<Instant> {
    let content = result.get("structuredContent")?;
    let facts = content
        .get("facts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let hits = content
        .get("hits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|h| h.get("fact"));
    let now = chrono::Utc::now();
    facts
        .chain(hits)
        .filter_map(|f| f.get("valid_until").and_then(Value::as_str))
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .filter_map(|t| (t.with_timezone(&chrono::Utc) - now).to_std().ok())
        .min()
        .map(|d| Instant::now() + d.min(Duration::from_secs(86_400)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serves_only_the_same_version() {
        let c = QueryCache::new(16, DEFAULT_NOW_TTL);
        c.insert("k".into(), 3, false, json!({"a": 1}));
        assert_eq!(c.get("k", 3), Some(json!({"a": 1})));
        assert_eq!(c.get("k", 4), None);
        assert_eq!(c.get("other", 3), None);
        // An older result never replaces a newer one.
        c.insert("k".into(), 5, false, json!({"a": 5}));
        c.insert("k".into(), 4, false, json!({"a": 4}));
        assert_eq!(c.get("k", 5), Some(json!({"a": 5})));
    }

    #[test]
    fn now_relative_entries_expire() {
        let c = QueryCache::new(16, Duration::ZERO);
        c.insert("k".into(), 1, true, json!({}));
        assert_eq!(c.get("k", 1), None);
        c.insert("k".into(), 1, false, json!({}));
        assert_eq!(c.get("k", 1), Some(json!({})));
    }

    #[test]
    fn a_passed_valid_until_bounds_the_entry() {
        let c = QueryCache::new(16, Duration::from_secs(3600));
        let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(30))
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let r = json!({"structuredContent": {"facts": [{"valid_until": soon}]}});
        c.insert("k".into(), 1, true, r.clone());
        assert_eq!(c.get("k", 1), Some(r));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get("k", 1), None);
    }
}
