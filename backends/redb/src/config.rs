//! The `redb:` URL: a file path, no options.

use crate::RedbStore;
use cortex_core::{Error, Result};
use std::path::Path;

/// URL scheme of this backend.
pub const SCHEME: &str = "redb";

impl RedbStore {
    /// Parses `redb:///abs/path`, `redb://rel/path` or `redb:path` and opens (creating and
    /// migrating) the file.
    pub fn open_url(url: &str) -> Result<RedbStore> {
        let rest = url
            .strip_prefix("redb://")
            .or_else(|| url.strip_prefix("redb:"))
            .ok_or_else(|| Error::config(format!("{url:?} is not a redb: URL")))?;
        if let Some((_, query)) = rest.split_once('?') {
            return Err(Error::config(format!(
                "unknown redb URL option {query:?}; redb URLs take no options"
            )));
        }
        if rest.is_empty() {
            return Err(Error::config(format!("{url:?} names no database file")));
        }
        Self::open(Path::new(rest))
    }
}
