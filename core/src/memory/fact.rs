//! Facts: the records of the agent memory, how they are validated,
//! and the ledger details that make the memory's history reconstructible from the ledger alone.
//!
//! A fact's id is the ledger index of the `fact.store` entry that created it, so every fact
//! points at its own inclusion proof. Every mutation is a ledger entry (`fact.store`,
//! `fact.vote`, `fact.deprecate`, `fact.erase`) whose JSON detail carries what changed and who
//! made it ([`Author`]); stores persist the derived state
//! ([`FactChange`](crate::memory::store::FactChange)) in the same transaction as the entry.
//! A fact's erasable fields (content, tags, source) enter the ledger only as a salted
//! commitment ([`crate::memory::commitment`]). Votes and reputations are in
//! [`crate::memory::consensus`].

use crate::error::{Error, Result};
use crate::ledger::entry::{format_timestamp, validate_timestamp};
use serde::{Deserialize, Serialize};

/// Ledger action of an entry that stores a fact.
pub const ACTION_STORE: &str = "fact.store";
/// Ledger action of an entry that records a vote.
pub const ACTION_VOTE: &str = "fact.vote";
/// Ledger action of an entry that deprecates a fact.
pub const ACTION_DEPRECATE: &str = "fact.deprecate";
/// Ledger action of an entry that erases a fact's content.
pub const ACTION_ERASE: &str = "fact.erase";

/// Refuses an action in the agent memory's namespace (`fact.` and anything after it) for an
/// entry appended directly to the ledger: the memory's entries are written only with the
/// memory changes they describe, or `verify` would find the memory out of step with the ledger.
pub fn check_not_reserved(action: &str) -> Result<()> {
    if action.starts_with("fact.") {
        return Err(Error::invalid(format!(
            "action {action:?} is reserved for the agent memory: use cortex store, vote, \
             deprecate or forget, which write the entry together with the memory change"
        )));
    }
    Ok(())
}

/// True for the actions of the agent memory's entries (`fact.*`).
pub fn is_memory_action(action: &str) -> bool {
    matches!(
        action,
        ACTION_STORE | ACTION_VOTE | ACTION_DEPRECATE | ACTION_ERASE
    )
}

/// Fact type used when none is given (as in the seed).
pub const DEFAULT_FACT_TYPE: &str = "knowledge";
/// Largest fact type, in bytes.
pub const MAX_FACT_TYPE_BYTES: usize = 64;
/// Most tags on one fact.
pub const MAX_TAGS: usize = 32;
/// Largest tag, in bytes.
pub const MAX_TAG_BYTES: usize = 64;
/// Largest source, in bytes.
pub const MAX_SOURCE_BYTES: usize = 1024;
/// Largest vote or deprecation reason, in bytes.
pub const MAX_REASON_BYTES: usize = 4096;
/// Largest agent name, in bytes.
pub const MAX_AGENT_BYTES: usize = 256;
/// Largest surface name, in bytes.
pub const MAX_SURFACE_BYTES: usize = 64;
/// Most search results one query may ask for.
pub const MAX_TOP_K: usize = 1000;
/// Most facts one recall or history page may ask for.
pub const MAX_LIMIT: usize = 100_000;

/// A fact as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    /// The ledger index of the `fact.store` entry that created it.
    pub id: u64,
    /// Project (namespace); the project of every ledger entry about this fact.
    pub project: String,
    /// The fact's text.
    pub content: String,
    /// Kind of fact (`knowledge`, `decision`, …).
    pub fact_type: String,
    /// Tags, in the order given, without duplicates.
    pub tags: Vec<String>,
    /// How sure the author was, in `0..=1`.
    pub confidence: f64,
    /// Where it came from (a URL, a file, an agent), if known.
    pub source: Option<String>,
    /// Start of validity (canonical timestamp, inclusive).
    pub valid_from: String,
    /// End of validity (canonical timestamp, exclusive), if it ends.
    pub valid_until: Option<String>,
    /// Timestamp of its `fact.store` entry.
    pub created_at: String,
    /// Timestamp of its `fact.deprecate` entry, if deprecated.
    pub deprecated_at: Option<String>,
    /// Why it was deprecated.
    pub deprecation_reason: Option<String>,
    /// Reputation-weighted consensus score in `(-1, 1)`; 0 without votes (see
    /// [`crate::memory::consensus`]).
    pub consensus: f64,
    /// The agent that stored it, if it declared one (`None` also for facts stored before
    /// authors were recorded).
    #[serde(default)]
    pub author: Option<String>,
    /// The surface it was stored through (`cli`, `mcp-stdio`, …); `None` for facts stored before
    /// authors were recorded.
    #[serde(default)]
    pub surface: Option<String>,
    /// Timestamp of its `fact.erase` entry, if erased: its content, tags and source are gone.
    #[serde(default)]
    pub erased_at: Option<String>,
}

impl Fact {
    /// True if the fact is valid at canonical timestamp `t`:
    /// `valid_from <= t` and (`valid_until` is unset or `t < valid_until`).
    pub fn is_valid_at(&self, t: &str) -> bool {
        self.valid_from.as_str() <= t && self.valid_until.as_deref().is_none_or(|u| t < u)
    }
    /// True if deprecated.
    pub fn is_deprecated(&self) -> bool {
        self.deprecated_at.is_some()
    }
    /// True if erased.
    pub fn is_erased(&self) -> bool {
        self.erased_at.is_some()
    }
    /// True if a search or recall with these filters may return it: not erased, by `author`
    /// if one is asked for, with a consensus of at least `min_consensus` if one is asked for.
    pub fn passes(&self, author: Option<&str>, min_consensus: Option<f64>) -> bool {
        !self.is_erased()
            && author.is_none_or(|a| self.author.as_deref() == Some(a))
            && min_consensus.is_none_or(|m| self.consensus >= m)
    }
}

/// Who wrote a memory entry: the agent (its declared id, an MCP client's name, an API key's
/// identity) and the surface it came through. Recorded in every memory entry's detail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Author {
    /// The agent, if it declared one.
    pub agent: Option<String>,
    /// The surface: `cli`, `mcp-stdio`, `mcp-http`, `mcp-sse`, `mcp-ws`, `rest`, or what an
    /// embedding program names.
    pub surface: String,
}

impl Author {
    /// An author on `surface`, with an agent id if given (a blank one counts as none).
    pub fn new(agent: Option<&str>, surface: impl Into<String>) -> Self {
        Author {
            agent: agent
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned),
            surface: surface.into(),
        }
    }
    /// Checks the agent (as [`check_agent`]) and the surface (1 to 64 bytes, no control
    /// characters).
    pub fn check(&self) -> Result<()> {
        if let Some(a) = &self.agent {
            check_agent(a)?;
        }
        check_name("surface", &self.surface, MAX_SURFACE_BYTES)
    }
}

/// A fact as a caller hands it in. Unset fields take their defaults when stored: type
/// `knowledge`, no tags, confidence 1, no source, valid from the time of storing, forever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFact {
    /// Project (namespace).
    pub project: String,
    /// The fact's text; must not be blank.
    pub content: String,
    /// Kind of fact.
    #[serde(default, alias = "type")]
    pub fact_type: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Confidence in `0..=1`.
    #[serde(default)]
    pub confidence: Option<f64>,
    /// Where it came from.
    #[serde(default)]
    pub source: Option<String>,
    /// Start of validity: RFC 3339 (any offset) or `YYYY-MM-DD`; stored canonical.
    #[serde(default)]
    pub valid_from: Option<String>,
    /// End of validity (exclusive), after `valid_from`.
    #[serde(default)]
    pub valid_until: Option<String>,
}

impl NewFact {
    /// A fact with defaults for everything but project and content.
    pub fn new(project: impl Into<String>, content: impl Into<String>) -> Self {
        NewFact {
            project: project.into(),
            content: content.into(),
            fact_type: None,
            tags: Vec::new(),
            confidence: None,
            source: None,
            valid_from: None,
            valid_until: None,
        }
    }

    /// Checks the fact as [`crate::memory::AgentMemory::store_fact`] will, including the ledger's
    /// entry-size limit, without storing it.
    pub fn check(&self) -> Result<()> {
        let d = self.to_detail(&crate::ledger::entry::now_timestamp())?;
        crate::ledger::entry::NewEntry::new(self.project.clone(), ACTION_STORE, d.to_json())
            .validate()
    }

    /// Validates and normalizes the fact into its `fact.store` ledger detail; `now` (canonical)
    /// is the default start of validity. Errors name the offending field.
    pub fn to_detail(&self, now: &str) -> Result<StoreDetail> {
        check_name(
            "project",
            &self.project,
            crate::ledger::entry::MAX_NAME_BYTES,
        )?;
        if self.content.trim().is_empty() {
            return Err(Error::invalid("content must not be empty"));
        }
        let fact_type = match &self.fact_type {
            Some(t) => {
                let t = t.trim();
                check_name("fact_type", t, MAX_FACT_TYPE_BYTES)?;
                t.to_owned()
            }
            None => DEFAULT_FACT_TYPE.to_owned(),
        };
        let mut tags: Vec<String> = Vec::with_capacity(self.tags.len());
        for t in &self.tags {
            let t = t.trim();
            check_name("tag", t, MAX_TAG_BYTES)?;
            if !tags.iter().any(|x| x == t) {
                tags.push(t.to_owned());
            }
        }
        if tags.len() > MAX_TAGS {
            return Err(Error::invalid(format!(
                "{} tags given; at most {MAX_TAGS} are allowed",
                tags.len()
            )));
        }
        let confidence = self.confidence.unwrap_or(1.0);
        check_confidence(confidence)?;
        let source = optional_text("source", self.source.as_deref(), MAX_SOURCE_BYTES)?;
        let valid_from = match &self.valid_from {
            Some(v) => parse_timestamp("valid_from", v)?,
            None => now.to_owned(),
        };
        let valid_until = self
            .valid_until
            .as_deref()
            .map(|v| parse_timestamp("valid_until", v))
            .transpose()?;
        if let Some(u) = &valid_until
            && *u <= valid_from
        {
            return Err(Error::invalid(format!(
                "valid_until {u} must be after valid_from {valid_from}"
            )));
        }
        Ok(StoreDetail {
            content: self.content.clone(),
            fact_type,
            tags,
            confidence,
            source,
            valid_from,
            valid_until,
        })
    }
}

/// Checks a confidence value: finite and in `0..=1`.
pub fn check_confidence(c: f64) -> Result<()> {
    if !(c.is_finite() && (0.0..=1.0).contains(&c)) {
        return Err(Error::invalid(format!("confidence {c} is outside 0..=1")));
    }
    Ok(())
}

/// Checks an agent name: 1 to 256 bytes, no control characters.
pub fn check_agent(agent: &str) -> Result<()> {
    check_name("agent", agent, MAX_AGENT_BYTES)
}

/// A reason as stored: `None` when absent or blank; an error if too long or not text.
pub fn normalize_reason(reason: Option<&str>) -> Result<Option<String>> {
    optional_text("reason", reason, MAX_REASON_BYTES)
}

fn check_name(field: &str, v: &str, max: usize) -> Result<()> {
    if v.trim().is_empty() {
        return Err(Error::invalid(format!("{field} must not be empty")));
    }
    if v.len() > max {
        return Err(Error::invalid(format!(
            "{field} is {} bytes, over the {max}-byte limit",
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

fn optional_text(field: &str, v: Option<&str>, max: usize) -> Result<Option<String>> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.len() > max => Err(Error::invalid(format!(
            "{field} is {} bytes, over the {max}-byte limit",
            s.len()
        ))),
        Some(s) => Ok(Some(s.to_owned())),
    }
}

/// Parses a timestamp given by a user into canonical form (UTC, microseconds, `Z`). Accepts
/// RFC 3339 with any offset (`2026-01-02T03:04:05+02:00`) or a date (`2026-01-02`, midnight
/// UTC). The error names `field`.
pub fn parse_timestamp(field: &str, v: &str) -> Result<String> {
    let v = v.trim();
    let bad = || {
        Error::invalid(format!(
            "{field} {v:?} is not a timestamp: use RFC 3339 (2026-01-02T03:04:05Z) or a date \
             (2026-01-02)"
        ))
    };
    let t = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        t.with_timezone(&chrono::Utc)
    } else if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc()
    } else {
        return Err(bad());
    };
    let s = format_timestamp(t);
    validate_timestamp(&s).map_err(|_| bad())?;
    Ok(s)
}

/// A fact's fields, validated and normalized: what [`NewFact::to_detail`] makes. It is also
/// the detail of a `fact.store` entry written before erasure existed (the *plain* form, content
/// in the ledger itself), which every reader still accepts. New facts are written in the
/// [`SealedStoreDetail`] form. The fact's id and `created_at` are the entry's index and
/// timestamp; its project is the entry's project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreDetail {
    /// Text.
    pub content: String,
    /// Kind.
    pub fact_type: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Confidence in `0..=1`.
    pub confidence: f64,
    /// Source.
    pub source: Option<String>,
    /// Start of validity, canonical.
    pub valid_from: String,
    /// End of validity, canonical.
    pub valid_until: Option<String>,
}

impl StoreDetail {
    /// The JSON text of the plain form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("serializing plain data cannot fail")
    }
    /// The fact this detail creates at ledger `index` and `timestamp` in `project`.
    pub fn into_fact(self, id: u64, project: &str, created_at: &str) -> Fact {
        Fact {
            id,
            project: project.to_owned(),
            content: self.content,
            fact_type: self.fact_type,
            tags: self.tags,
            confidence: self.confidence,
            source: self.source,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            created_at: created_at.to_owned(),
            deprecated_at: None,
            deprecation_reason: None,
            consensus: 0.0,
            author: None,
            surface: None,
            erased_at: None,
        }
    }
    /// The erasable fields.
    pub fn content(&self) -> crate::memory::commitment::FactContent {
        crate::memory::commitment::FactContent {
            content: self.content.clone(),
            tags: self.tags.clone(),
            source: self.source.clone(),
        }
    }
    /// The sealed `fact.store` detail of these fields under `commitment` (see
    /// [`crate::memory::commitment::commit`]), written by `author`.
    pub fn seal(&self, commitment: String, author: Author) -> SealedStoreDetail {
        SealedStoreDetail {
            commitment,
            fact_type: self.fact_type.clone(),
            confidence: self.confidence,
            valid_from: self.valid_from.clone(),
            valid_until: self.valid_until.clone(),
            author,
        }
    }
}

/// The JSON detail of a `fact.store` entry: the fact's fields that are never erased, a salted
/// commitment to the erasable ones (content, tags, source), and the author. The content and the
/// salt are stored beside the entry ([`crate::memory::commitment::FactOpening`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedStoreDetail {
    /// Lowercase hex of the commitment hash.
    pub commitment: String,
    /// Kind.
    pub fact_type: String,
    /// Confidence in `0..=1`.
    pub confidence: f64,
    /// Start of validity, canonical.
    pub valid_from: String,
    /// End of validity, canonical.
    pub valid_until: Option<String>,
    /// Who stored it.
    pub author: Author,
}

impl SealedStoreDetail {
    /// The JSON text stored in the ledger.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("serializing plain data cannot fail")
    }
    /// The fact this detail creates at ledger `index` and `timestamp` in `project`, with its
    /// erasable fields taken from `content` (empty if the content is gone).
    pub fn into_fact(
        self,
        id: u64,
        project: &str,
        created_at: &str,
        content: crate::memory::commitment::FactContent,
    ) -> Fact {
        Fact {
            id,
            project: project.to_owned(),
            content: content.content,
            fact_type: self.fact_type,
            tags: content.tags,
            confidence: self.confidence,
            source: content.source,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            created_at: created_at.to_owned(),
            deprecated_at: None,
            deprecation_reason: None,
            consensus: 0.0,
            author: self.author.agent,
            surface: Some(self.author.surface),
            erased_at: None,
        }
    }
}

/// A `fact.store` detail in either form.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreRecord {
    /// Written before erasure existed: the content is in the ledger.
    Plain(StoreDetail),
    /// Content committed to, stored beside the entry.
    Sealed(SealedStoreDetail),
}

impl StoreRecord {
    /// Parses a `fact.store` detail (sealed first: it is what is written now).
    pub fn parse(detail: &str) -> Result<StoreRecord> {
        match serde_json::from_str::<SealedStoreDetail>(detail) {
            Ok(d) => Ok(StoreRecord::Sealed(d)),
            Err(sealed) => serde_json::from_str::<StoreDetail>(detail)
                .map(StoreRecord::Plain)
                .map_err(|_| Error::invalid(format!("not a fact.store detail: {sealed}"))),
        }
    }
}

/// The JSON detail of a `fact.vote` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteDetail {
    /// The fact voted on.
    pub fact_id: u64,
    /// Who voted.
    pub agent: String,
    /// +1 or -1.
    pub vote: i8,
    /// Why.
    pub reason: Option<String>,
    /// Who wrote the entry (absent in entries written before authors were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Author>,
}

/// The JSON detail of a `fact.deprecate` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeprecateDetail {
    /// The fact deprecated.
    pub fact_id: u64,
    /// Why.
    pub reason: Option<String>,
    /// Who wrote the entry (absent in entries written before authors were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Author>,
}

/// The JSON detail of a `fact.erase` entry: the fact whose content, tags, source and salt were
/// deleted. Its commitment stays in the ledger, so every proof stays valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EraseDetail {
    /// The fact erased.
    pub fact_id: u64,
    /// Why (required: an erasure is an auditable act).
    pub reason: String,
    /// Who erased it.
    pub author: Author,
}

macro_rules! to_json {
    ($t:ty) => {
        impl $t {
            /// The JSON text stored in the ledger.
            pub fn to_json(&self) -> String {
                serde_json::to_string(self).expect("serializing plain data cannot fail")
            }
        }
    };
}
to_json!(VoteDetail);
to_json!(DeprecateDetail);
to_json!(EraseDetail);

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-02T03:04:05.000006Z";

    #[test]
    fn defaults_and_normalization() {
        let mut f = NewFact::new("p", "The sky is blue");
        f.tags = vec![" a ".into(), "b".into(), "a".into()];
        let d = f.to_detail(NOW).unwrap();
        assert_eq!(d.fact_type, "knowledge");
        assert_eq!(d.tags, ["a", "b"]);
        assert_eq!(d.confidence, 1.0);
        assert_eq!(d.valid_from, NOW);
        assert_eq!(
            d.to_json(),
            r#"{"content":"The sky is blue","fact_type":"knowledge","tags":["a","b"],"confidence":1.0,"source":null,"valid_from":"2026-01-02T03:04:05.000006Z","valid_until":null}"#
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        let cases: Vec<(NewFact, &str)> = vec![
            (NewFact::new("p", "  "), "content"),
            (NewFact::new("", "x"), "project"),
            (
                NewFact {
                    confidence: Some(7.0),
                    ..NewFact::new("p", "x")
                },
                "confidence 7",
            ),
            (
                NewFact {
                    confidence: Some(f64::NAN),
                    ..NewFact::new("p", "x")
                },
                "confidence",
            ),
            (
                NewFact {
                    valid_from: Some("yesterday".into()),
                    ..NewFact::new("p", "x")
                },
                "valid_from \"yesterday\"",
            ),
            (
                NewFact {
                    valid_from: Some("2026-02-01".into()),
                    valid_until: Some("2026-01-01".into()),
                    ..NewFact::new("p", "x")
                },
                "valid_until",
            ),
            (
                NewFact {
                    tags: vec!["".into()],
                    ..NewFact::new("p", "x")
                },
                "tag",
            ),
            (
                NewFact {
                    fact_type: Some("a\nb".into()),
                    ..NewFact::new("p", "x")
                },
                "fact_type",
            ),
        ];
        for (f, want) in cases {
            let e = f.to_detail(NOW).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::InvalidInput);
            assert!(e.to_string().contains(want), "{e} lacks {want:?}");
        }
    }

    #[test]
    fn timestamps_are_canonicalized() {
        assert_eq!(
            parse_timestamp("t", "2026-01-02T05:04:05+02:00").unwrap(),
            "2026-01-02T03:04:05.000000Z"
        );
        assert_eq!(
            parse_timestamp("t", "2026-01-02").unwrap(),
            "2026-01-02T00:00:00.000000Z"
        );
        assert_eq!(parse_timestamp("t", NOW).unwrap(), NOW);
        assert!(parse_timestamp("t", "2026-13-01").is_err());
    }

    #[test]
    fn validity_is_half_open() {
        let f = StoreDetail {
            content: "x".into(),
            fact_type: "k".into(),
            tags: vec![],
            confidence: 1.0,
            source: None,
            valid_from: "2026-01-01T00:00:00.000000Z".into(),
            valid_until: Some("2026-02-01T00:00:00.000000Z".into()),
        }
        .into_fact(3, "p", NOW);
        assert!(!f.is_valid_at("2025-12-31T23:59:59.999999Z"));
        assert!(f.is_valid_at("2026-01-01T00:00:00.000000Z"));
        assert!(f.is_valid_at("2026-01-31T23:59:59.999999Z"));
        assert!(!f.is_valid_at("2026-02-01T00:00:00.000000Z"));
    }
}
