//! Ledger entries and their canonical bytes.
//!
//! The canonical encoding is length-prefixed and versioned, so no two distinct entries share
//! bytes (the seed's `a:b:c` joining allowed `("a:b","c")` and `("a","b:c")` to collide).

use crate::error::{Error, Result};
use crate::ledger::hash::{Hash, Hasher};
use serde::{Deserialize, Serialize};

/// Version tag, the first byte of every canonical entry encoding.
pub const ENTRY_VERSION: u8 = 0x01;
/// Largest canonical encoding accepted. Bigger payloads belong elsewhere, referenced by hash.
pub const MAX_ENTRY_BYTES: usize = 65_535;
/// Largest project or action name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Length of a canonical timestamp: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub const TIMESTAMP_LEN: usize = 27;

/// An entry as the caller hands it in: what happened, before the ledger numbers and stamps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEntry {
    /// The project (namespace) the action belongs to.
    pub project: String,
    /// What happened, e.g. `fact.store`.
    pub action: String,
    /// UTF-8 JSON text, stored verbatim (never re-serialized).
    pub detail: String,
}

impl NewEntry {
    /// A new entry; validated when appended.
    pub fn new(
        project: impl Into<String>,
        action: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        NewEntry {
            project: project.into(),
            action: action.into(),
            detail: detail.into(),
        }
    }

    /// Checks names and that `detail` is JSON; errors name the offending field.
    pub fn validate(&self) -> Result<()> {
        validate_name("project", &self.project)?;
        validate_name("action", &self.action)?;
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&self.detail) {
            return Err(Error::invalid(format!("detail is not valid JSON: {e}")));
        }
        let size = encoded_len(&self.project, &self.action, &self.detail);
        if size > MAX_ENTRY_BYTES {
            return Err(Error::invalid(format!(
                "entry is {size} bytes encoded, over the {MAX_ENTRY_BYTES}-byte limit; \
                 store large payloads elsewhere and reference them by hash"
            )));
        }
        Ok(())
    }
}

fn validate_name(field: &str, v: &str) -> Result<()> {
    if v.is_empty() {
        return Err(Error::invalid(format!("{field} must not be empty")));
    }
    if v.len() > MAX_NAME_BYTES {
        return Err(Error::invalid(format!(
            "{field} is {} bytes, over the {MAX_NAME_BYTES}-byte limit",
            v.len()
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{field} {v:?} contains a control character"
        )));
    }
    Ok(())
}

fn encoded_len(project: &str, action: &str, detail: &str) -> usize {
    1 + 8 + 4 * 4 + TIMESTAMP_LEN + project.len() + action.len() + detail.len()
}

/// A borrowed view of an entry's five fields: what the canonical bytes cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// 0-based position in the ledger.
    pub index: u64,
    /// RFC 3339 UTC with microseconds: `2026-11-24T17:28:48.123456Z`.
    pub timestamp: &'a str,
    /// Project name.
    pub project: &'a str,
    /// Action name.
    pub action: &'a str,
    /// JSON text, verbatim.
    pub detail: &'a str,
}

impl EntryRef<'_> {
    /// An owned copy.
    pub fn to_entry(&self) -> Entry {
        Entry {
            index: self.index,
            timestamp: self.timestamp.to_owned(),
            project: self.project.to_owned(),
            action: self.action.to_owned(),
            detail: self.detail.to_owned(),
        }
    }

    /// Appends the canonical bytes to `out`:
    /// `0x01 ‖ u64be(index) ‖ lp(timestamp) ‖ lp(project) ‖ lp(action) ‖ lp(detail)`
    /// where `lp(x) = u32be(len(x)) ‖ x`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(encoded_len(self.project, self.action, self.detail));
        out.push(ENTRY_VERSION);
        out.extend_from_slice(&self.index.to_be_bytes());
        for field in [self.timestamp, self.project, self.action, self.detail] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
    }
    /// The canonical bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_into(&mut v);
        v
    }
    /// Merkle leaf hash of the canonical bytes, reusing `buf` to avoid allocation.
    pub fn leaf_hash(&self, hasher: &dyn Hasher, buf: &mut Vec<u8>) -> Hash {
        buf.clear();
        buf.push(crate::ledger::hash::LEAF_PREFIX);
        self.encode_into(buf);
        hasher.digest_buf(buf)
    }
}

/// Decodes canonical entry bytes (as carried in a tlog-proof `extra` line).
pub fn decode_entry(bytes: &[u8]) -> Result<Entry> {
    let bad = |why: &str| Error::invalid(format!("entry bytes are malformed: {why}"));
    if bytes.len() > MAX_ENTRY_BYTES {
        return Err(bad("longer than 65535 bytes"));
    }
    let (&version, rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
    if version != ENTRY_VERSION {
        return Err(bad(&format!("unknown version tag 0x{version:02x}")));
    }
    let (idx, mut rest) = rest
        .split_at_checked(8)
        .ok_or_else(|| bad("truncated index"))?;
    let index = u64::from_be_bytes(idx.try_into().expect("8 bytes"));
    let mut fields = Vec::with_capacity(4);
    for name in ["timestamp", "project", "action", "detail"] {
        let (len, r) = rest
            .split_at_checked(4)
            .ok_or_else(|| bad(&format!("truncated {name} length")))?;
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let (val, r) = r
            .split_at_checked(len)
            .ok_or_else(|| bad(&format!("truncated {name}")))?;
        let s = std::str::from_utf8(val).map_err(|_| bad(&format!("{name} is not UTF-8")))?;
        fields.push(s.to_owned());
        rest = r;
    }
    if !rest.is_empty() {
        return Err(bad("trailing bytes"));
    }
    let detail = fields.pop().expect("4 fields");
    let action = fields.pop().expect("4 fields");
    let project = fields.pop().expect("4 fields");
    let timestamp = fields.pop().expect("4 fields");
    Ok(Entry {
        index,
        timestamp,
        project,
        action,
        detail,
    })
}

/// An owned entry with its position and timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// 0-based position in the ledger.
    pub index: u64,
    /// RFC 3339 UTC with microseconds.
    pub timestamp: String,
    /// Project name.
    pub project: String,
    /// Action name.
    pub action: String,
    /// JSON text, verbatim.
    pub detail: String,
}

impl Entry {
    /// Borrowed view.
    pub fn as_ref(&self) -> EntryRef<'_> {
        EntryRef {
            index: self.index,
            timestamp: &self.timestamp,
            project: &self.project,
            action: &self.action,
            detail: &self.detail,
        }
    }
}

/// An entry as stored: the five fields plus its hash-chain link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The entry.
    pub entry: Entry,
    /// Chain hash of the previous entry (all zeros for entry 0).
    pub prev_hash: Hash,
    /// `chain(prev_hash, leaf_hash(entry))`.
    pub hash: Hash,
}

/// A borrowed stored row, as streamed by [`crate::ledger::store::LedgerStore::scan_entries`].
#[derive(Debug, Clone, Copy)]
pub struct StoredEntryRef<'a> {
    /// The entry fields.
    pub entry: EntryRef<'a>,
    /// Stored previous chain hash (may be malformed: raw bytes as stored).
    pub prev_hash: &'a [u8],
    /// Stored chain hash (may be malformed: raw bytes as stored).
    pub hash: &'a [u8],
}

/// Formats a time as the canonical timestamp (UTC, microseconds, `Z`).
pub fn format_timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The canonical timestamp of now.
pub fn now_timestamp() -> String {
    format_timestamp(chrono::Utc::now())
}

/// Checks that `ts` is exactly in canonical form.
pub fn validate_timestamp(ts: &str) -> Result<()> {
    let bad = || {
        Error::invalid(format!(
            "timestamp {ts:?} is not YYYY-MM-DDTHH:MM:SS.ffffffZ"
        ))
    };
    if ts.len() != TIMESTAMP_LEN || !ts.ends_with('Z') {
        return Err(bad());
    }
    let parsed = chrono::NaiveDateTime::parse_from_str(&ts[..26], "%Y-%m-%dT%H:%M:%S%.6f")
        .map_err(|_| bad())?;
    if format_timestamp(parsed.and_utc()) != ts {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e<'a>(p: &'a str, a: &'a str) -> EntryRef<'a> {
        EntryRef {
            index: 7,
            timestamp: "2026-01-02T03:04:05.000006Z",
            project: p,
            action: a,
            detail: "{}",
        }
    }

    #[test]
    fn encoding_is_unambiguous_where_colon_joining_was_not() {
        assert_ne!(
            e("a:b", "c").canonical_bytes(),
            e("a", "b:c").canonical_bytes()
        );
    }

    #[test]
    fn encoding_round_trips() {
        let entry = e("proj", "act");
        let bytes = entry.canonical_bytes();
        assert_eq!(bytes[0], ENTRY_VERSION);
        assert_eq!(&bytes[1..9], &7u64.to_be_bytes());
        let back = decode_entry(&bytes).unwrap();
        assert_eq!(back.as_ref(), entry);
        assert!(decode_entry(&bytes[..bytes.len() - 1]).is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode_entry(&extra).is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let err = NewEntry::new("", "a", "{}").validate().unwrap_err();
        assert!(err.to_string().contains("project"));
        let err = NewEntry::new("p", "a", "{not json").validate().unwrap_err();
        assert!(err.to_string().contains("detail"));
        let big = format!("\"{}\"", "x".repeat(70_000));
        let err = NewEntry::new("p", "a", big).validate().unwrap_err();
        assert!(err.to_string().contains("65535"));
    }

    #[test]
    fn timestamps_are_strict() {
        assert!(validate_timestamp(&now_timestamp()).is_ok());
        assert!(validate_timestamp("2026-01-02T03:04:05Z").is_err());
        assert!(validate_timestamp("2026-13-02T03:04:05.000000Z").is_err());
        assert!(validate_timestamp("2026-01-02 03:04:05.000000Z").is_err());
    }
}
