//! The `sqlite:` URL and the options it sets: durability (`synchronous`) and how long to wait
//! for another process's write lock.

use crate::SqliteStore;
use cortex_core::{Error, Result};
use std::path::Path;
use std::time::Duration;

/// URL scheme of this backend.
pub const SCHEME: &str = "sqlite";

/// SQLite `synchronous` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync at every commit and on WAL checkpoints: survives power loss.
    Full,
    /// fsync only on WAL checkpoints: survives a killed process, not power loss.
    Normal,
}

/// How to open a SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Durability mode.
    pub synchronous: Synchronous,
    /// How long to wait for another process's write lock.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(30),
        }
    }
}

impl SqliteStore {
    /// Parses `sqlite:///abs/path`, `sqlite://rel/path` or `sqlite:path`, with optional
    /// `?synchronous=full|normal`, and opens (creating and migrating) the database.
    pub fn open_url(url: &str) -> Result<SqliteStore> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| Error::config(format!("{url:?} is not a sqlite: URL")))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(Error::config(format!("{url:?} names no database file")));
        }
        let mut options = SqliteOptions::default();
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            match kv.split_once('=') {
                Some(("synchronous", "full" | "FULL")) => options.synchronous = Synchronous::Full,
                Some(("synchronous", "normal" | "NORMAL")) => {
                    options.synchronous = Synchronous::Normal
                }
                _ => {
                    return Err(Error::config(format!(
                        "unknown SQLite URL option {kv:?}; available: synchronous=full|normal"
                    )));
                }
            }
        }
        Self::open(Path::new(path), options)
    }
}
