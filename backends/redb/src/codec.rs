//! The byte encodings of the records this backend stores as redb values.
//!
//! Plain length-prefixed binary rather than JSON: floats are stored as their bits (a JSON round
//! trip may move a consensus value by one ULP, and the conformance suite compares facts exactly),
//! and ledger rows keep their fields as raw bytes, so `verify` sees exactly what is on disk.
//!
//! Every record starts with a version tag naming its layout. A layout that changes gets a new
//! tag and the reader keeps decoding the old one, so a schema upgrade never rewrites records:
//! fact records are tagged 2 since schema 2 (author, surface and `erased_at` appended), and a
//! fact record tagged 1 (schema 1) still reads, with those three fields `None`.

use cortex_core::ledger::checkpoint::{CheckpointRecord, ExtraSignature, Receipt};
use cortex_core::ledger::entry::{Entry, EntryRef, StoredEntryRef};
use cortex_core::ledger::store::{AuditExport, Head, IntegrityCheck};
use cortex_core::memory::commitment::{FactContent, FactOpening};
use cortex_core::memory::consensus::{AgentReputation, Vote};
use cortex_core::memory::fact::Fact;
use cortex_core::{Error, Hash, Result};

/// Version tag of the records whose layout has not changed since schema 1; a record with
/// another tag is one this build cannot read.
const RECORD_VERSION: u8 = 1;
/// Version tag of fact records written since schema 2: the schema-1 layout followed by the
/// author, the surface and `erased_at`.
const FACT_VERSION: u8 = 2;

/// Builds one encoded record.
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    pub(crate) fn new() -> Self {
        Self::tagged(RECORD_VERSION)
    }
    fn tagged(version: u8) -> Self {
        Writer(vec![version])
    }
    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn f64(self, v: f64) -> Self {
        self.u64(v.to_bits())
    }
    pub(crate) fn bytes(mut self, b: &[u8]) -> Self {
        self.0
            .extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }
    pub(crate) fn str(self, s: &str) -> Self {
        self.bytes(s.as_bytes())
    }
    pub(crate) fn opt(mut self, s: Option<&str>) -> Self {
        match s {
            None => {
                self.0.push(0);
                self
            }
            Some(s) => {
                self.0.push(1);
                self.str(s)
            }
        }
    }
    pub(crate) fn strs(self, v: &[String]) -> Self {
        v.iter().fold(self.u64(v.len() as u64), |w, s| w.str(s))
    }
    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads one encoded record; every read fails (as an integrity error naming `what`) on bytes
/// that do not decode.
pub(crate) struct Reader<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8], what: &'static str) -> Result<Self> {
        Self::versioned(b, what, &[RECORD_VERSION]).map(|(_, r)| r)
    }
    /// A reader of a record whose tag is one of `known`, and that tag.
    fn versioned(b: &'a [u8], what: &'static str, known: &[u8]) -> Result<(u8, Self)> {
        match b.split_first() {
            Some((v, rest)) if known.contains(v) => Ok((*v, Reader { b: rest, what })),
            Some((v, _)) => Err(Error::integrity(format!(
                "stored {what} record has unknown version tag 0x{v:02x}"
            ))),
            None => Err(Error::integrity(format!("stored {what} record is empty"))),
        }
    }
    fn bad(&self) -> Error {
        Error::integrity(format!("stored {} record is malformed", self.what))
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (h, t) = self.b.split_at_checked(n).ok_or_else(|| self.bad())?;
        self.b = t;
        Ok(h)
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    pub(crate) fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64()?))
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")) as usize;
        self.take(n)
    }
    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| self.bad())
    }
    pub(crate) fn string(&mut self) -> Result<String> {
        self.str().map(str::to_owned)
    }
    pub(crate) fn opt(&mut self) -> Result<Option<String>> {
        match self.take(1)?[0] {
            0 => Ok(None),
            1 => self.string().map(Some),
            _ => Err(self.bad()),
        }
    }
    pub(crate) fn strs(&mut self) -> Result<Vec<String>> {
        let n = self.u64()?;
        (0..n).map(|_| self.string()).collect()
    }
    pub(crate) fn end(self) -> Result<()> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(self.bad())
        }
    }
}

/// A ledger row: the entry's fields and chain hashes, as raw bytes (the index is the key).
pub(crate) fn encode_entry(e: EntryRef<'_>, prev: &Hash, hash: &Hash) -> Vec<u8> {
    Writer::new()
        .str(e.timestamp)
        .str(e.project)
        .str(e.action)
        .str(e.detail)
        .bytes(&prev.0)
        .bytes(&hash.0)
        .finish()
}

/// The raw fields of a stored ledger row, decoded leniently: a row whose bytes do not decode
/// yields empty fields (and empty hashes), which `verify` then reports at its index, instead of
/// an error that would stop the scan.
pub(crate) struct RawEntry<'a> {
    fields: [&'a [u8]; 4],
    prev: &'a [u8],
    hash: &'a [u8],
}

impl<'a> RawEntry<'a> {
    pub(crate) fn parse(b: &'a [u8]) -> RawEntry<'a> {
        let parse = || -> Result<RawEntry<'a>> {
            let mut r = Reader::new(b, "entry")?;
            let fields = [r.bytes()?, r.bytes()?, r.bytes()?, r.bytes()?];
            let (prev, hash) = (r.bytes()?, r.bytes()?);
            r.end()?;
            Ok(RawEntry { fields, prev, hash })
        };
        parse().unwrap_or(RawEntry {
            fields: [&[]; 4],
            prev: &[],
            hash: &[],
        })
    }

    /// Visits the row as a [`StoredEntryRef`]; fields that are not UTF-8 are rendered lossily
    /// (so verify flags them).
    pub(crate) fn visit(
        &self,
        index: u64,
        visit: &mut dyn FnMut(StoredEntryRef<'_>) -> Result<()>,
    ) -> Result<()> {
        let text = |b: &'a [u8]| String::from_utf8_lossy(b);
        let [t, p, a, d] = self.fields.map(text);
        visit(StoredEntryRef {
            entry: EntryRef {
                index,
                timestamp: &t,
                project: &p,
                action: &a,
                detail: &d,
            },
            prev_hash: self.prev,
            hash: self.hash,
        })
    }

    pub(crate) fn to_entry(&self, index: u64) -> Entry {
        let [timestamp, project, action, detail] =
            self.fields.map(|b| String::from_utf8_lossy(b).into_owned());
        Entry {
            index,
            timestamp,
            project,
            action,
            detail,
        }
    }
}

pub(crate) fn encode_head(h: &Head) -> Vec<u8> {
    Writer::new().u64(h.size).bytes(&h.last_hash.0).finish()
}

pub(crate) fn decode_head(b: &[u8]) -> Result<Head> {
    let mut r = Reader::new(b, "ledger head")?;
    let size = r.u64()?;
    let last_hash = Hash::from_slice(r.bytes()?)
        .map_err(|_| Error::integrity("ledger head hash is not 32 bytes"))?;
    r.end()?;
    Ok(Head { size, last_hash })
}

pub(crate) fn encode_fact(f: &Fact) -> Vec<u8> {
    Writer::tagged(FACT_VERSION)
        .u64(f.id)
        .str(&f.project)
        .str(&f.content)
        .str(&f.fact_type)
        .strs(&f.tags)
        .f64(f.confidence)
        .opt(f.source.as_deref())
        .str(&f.valid_from)
        .opt(f.valid_until.as_deref())
        .str(&f.created_at)
        .opt(f.deprecated_at.as_deref())
        .opt(f.deprecation_reason.as_deref())
        .f64(f.consensus)
        .opt(f.author.as_deref())
        .opt(f.surface.as_deref())
        .opt(f.erased_at.as_deref())
        .finish()
}

/// Decodes a fact record of either layout (a schema-1 record has no author, surface or
/// `erased_at`).
pub(crate) fn decode_fact(b: &[u8]) -> Result<Fact> {
    let (version, mut r) = Reader::versioned(b, "fact", &[RECORD_VERSION, FACT_VERSION])?;
    let mut f = Fact {
        id: r.u64()?,
        project: r.string()?,
        content: r.string()?,
        fact_type: r.string()?,
        tags: r.strs()?,
        confidence: r.f64()?,
        source: r.opt()?,
        valid_from: r.string()?,
        valid_until: r.opt()?,
        created_at: r.string()?,
        deprecated_at: r.opt()?,
        deprecation_reason: r.opt()?,
        consensus: r.f64()?,
        author: None,
        surface: None,
        erased_at: None,
    };
    if version == FACT_VERSION {
        f.author = r.opt()?;
        f.surface = r.opt()?;
        f.erased_at = r.opt()?;
    }
    r.end()?;
    Ok(f)
}

/// An opening without its fact id (the key).
pub(crate) fn encode_opening(o: &FactOpening) -> Vec<u8> {
    Writer::new()
        .str(&o.salt)
        .str(&o.fields.content)
        .strs(&o.fields.tags)
        .opt(o.fields.source.as_deref())
        .finish()
}

pub(crate) fn decode_opening(fact_id: u64, b: &[u8]) -> Result<FactOpening> {
    let mut r = Reader::new(b, "fact opening")?;
    let o = FactOpening {
        fact_id,
        salt: r.string()?,
        fields: FactContent {
            content: r.string()?,
            tags: r.strs()?,
            source: r.opt()?,
        },
    };
    r.end()?;
    Ok(o)
}

pub(crate) fn encode_vote(v: &Vote) -> Vec<u8> {
    let agreed = match v.agreed {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    };
    Writer::new()
        .u64(v.fact_id)
        .str(&v.agent)
        .u64(v.vote as i64 as u64)
        .opt(v.reason.as_deref())
        .f64(v.weight)
        .u64(agreed)
        .u64(v.entry_index)
        .str(&v.voted_at)
        .finish()
}

pub(crate) fn decode_vote(b: &[u8]) -> Result<Vote> {
    let mut r = Reader::new(b, "vote")?;
    let fact_id = r.u64()?;
    let agent = r.string()?;
    let vote = i8::try_from(r.u64()? as i64).map_err(|_| r.bad())?;
    let reason = r.opt()?;
    let weight = r.f64()?;
    let agreed = match r.u64()? {
        0 => None,
        1 => Some(false),
        2 => Some(true),
        _ => return Err(r.bad()),
    };
    let v = Vote {
        fact_id,
        agent,
        vote,
        reason,
        weight,
        agreed,
        entry_index: r.u64()?,
        voted_at: r.string()?,
    };
    r.end()?;
    Ok(v)
}

pub(crate) fn encode_agent(a: &AgentReputation) -> Vec<u8> {
    Writer::new()
        .str(&a.agent)
        .f64(a.reputation)
        .u64(a.votes)
        .u64(a.judged)
        .u64(a.agreed)
        .finish()
}

pub(crate) fn decode_agent(b: &[u8]) -> Result<AgentReputation> {
    let mut r = Reader::new(b, "agent")?;
    let a = AgentReputation {
        agent: r.string()?,
        reputation: r.f64()?,
        votes: r.u64()?,
        judged: r.u64()?,
        agreed: r.u64()?,
    };
    r.end()?;
    Ok(a)
}

/// A checkpoint without its receipts (they live in their own table, appended one by one).
pub(crate) fn encode_checkpoint(cp: &CheckpointRecord) -> Vec<u8> {
    let mut w = Writer::new()
        .u64(cp.size)
        .u64(cp.range_start)
        .u64(cp.range_count)
        .bytes(&cp.root.0)
        .str(&cp.note)
        .str(&cp.created_at)
        .u64(cp.extra_signatures.len() as u64);
    for s in &cp.extra_signatures {
        w = w.str(&s.scheme).str(&s.key_name).str(&s.signature);
    }
    w.finish()
}

pub(crate) fn decode_checkpoint(b: &[u8]) -> Result<CheckpointRecord> {
    let mut r = Reader::new(b, "checkpoint")?;
    let size = r.u64()?;
    let range_start = r.u64()?;
    let range_count = r.u64()?;
    // A root of the wrong length reads as zeros; verify then reports it as a bad root (as the
    // SQLite backend does with a root that is not hex).
    let root = Hash::from_slice(r.bytes()?).unwrap_or(Hash::ZERO);
    let note = r.string()?;
    let created_at = r.string()?;
    let n = r.u64()?;
    let mut extra_signatures = Vec::new();
    for _ in 0..n {
        extra_signatures.push(ExtraSignature {
            scheme: r.string()?,
            key_name: r.string()?,
            signature: r.string()?,
        });
    }
    r.end()?;
    Ok(CheckpointRecord {
        size,
        range_start,
        range_count,
        root,
        note,
        created_at,
        extra_signatures,
        receipts: Vec::new(),
    })
}

pub(crate) fn encode_receipt(x: &Receipt) -> Vec<u8> {
    Writer::new()
        .str(&x.anchor)
        .str(&x.target)
        .str(&x.body)
        .str(&x.created_at)
        .finish()
}

pub(crate) fn decode_receipt(b: &[u8]) -> Result<Receipt> {
    let mut r = Reader::new(b, "receipt")?;
    let x = Receipt {
        anchor: r.string()?,
        target: r.string()?,
        body: r.string()?,
        created_at: r.string()?,
    };
    r.end()?;
    Ok(x)
}

pub(crate) fn encode_check(c: &IntegrityCheck) -> Vec<u8> {
    Writer::new()
        .str(&c.check_type)
        .str(&c.status)
        .str(&c.details)
        .str(&c.started_at)
        .str(&c.completed_at)
        .finish()
}

pub(crate) fn decode_check(b: &[u8]) -> Result<IntegrityCheck> {
    let mut r = Reader::new(b, "integrity check")?;
    let c = IntegrityCheck {
        check_type: r.string()?,
        status: r.string()?,
        details: r.string()?,
        started_at: r.string()?,
        completed_at: r.string()?,
    };
    r.end()?;
    Ok(c)
}

pub(crate) fn encode_export(x: &AuditExport) -> Vec<u8> {
    Writer::new()
        .str(&x.export_type)
        .str(&x.filename)
        .str(&x.file_hash)
        .u64(x.start)
        .u64(x.end)
        .str(&x.exported_at)
        .str(&x.exported_by)
        .finish()
}

pub(crate) fn decode_export(b: &[u8]) -> Result<AuditExport> {
    let mut r = Reader::new(b, "export")?;
    let x = AuditExport {
        export_type: r.string()?,
        filename: r.string()?,
        file_hash: r.string()?,
        start: r.u64()?,
        end: r.u64()?,
        exported_at: r.string()?,
        exported_by: r.string()?,
    };
    r.end()?;
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact() -> Fact {
        Fact {
            id: 7,
            project: "p".into(),
            content: "c".into(),
            fact_type: "knowledge".into(),
            tags: vec!["a".into(), "b".into()],
            confidence: 0.5,
            source: Some("s".into()),
            valid_from: "2026-01-01T00:00:00.000000Z".into(),
            valid_until: None,
            created_at: "2026-01-01T00:00:00.000000Z".into(),
            deprecated_at: None,
            deprecation_reason: None,
            consensus: 0.1 + 0.2,
            author: Some("agent".into()),
            surface: Some("cli".into()),
            erased_at: Some("2026-02-01T00:00:00.000000Z".into()),
        }
    }

    #[test]
    fn a_fact_round_trips_and_a_schema_1_record_still_reads() {
        let f = fact();
        let bytes = encode_fact(&f);
        assert_eq!(bytes[0], FACT_VERSION);
        assert_eq!(decode_fact(&bytes).unwrap(), f);
        // The schema-1 layout: tag 1 and no author, surface or erased_at. Their three option
        // bytes (0) are the last three bytes of a record whose three fields are None.
        let old = Fact {
            author: None,
            surface: None,
            erased_at: None,
            ..f
        };
        let mut v1 = encode_fact(&old);
        v1.truncate(v1.len() - 3);
        v1[0] = RECORD_VERSION;
        assert_eq!(decode_fact(&v1).unwrap(), old);
        // A tag-1 record with the new fields, or a tag-2 record without them, is malformed.
        let mut long = bytes.clone();
        long[0] = RECORD_VERSION;
        assert!(decode_fact(&long).is_err());
        let mut short = v1.clone();
        short[0] = FACT_VERSION;
        assert!(decode_fact(&short).is_err());
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        let bytes = encode_fact(&fact());
        for n in 0..bytes.len() {
            assert!(decode_fact(&bytes[..n]).is_err(), "cut at {n}");
        }
        let mut tagged = bytes.clone();
        tagged[0] = 3;
        let e = decode_fact(&tagged).unwrap_err();
        assert!(e.to_string().contains("unknown version tag 0x03"), "{e}");
        // A string count far beyond the record is an error, not an allocation.
        let mut w = Writer::new().u64(u64::MAX).finish();
        w.extend_from_slice(&[0; 8]);
        assert!(Reader::new(&w, "test").unwrap().strs().is_err());
        let o = FactOpening {
            fact_id: 3,
            salt: "00".repeat(32),
            fields: FactContent {
                content: "c".into(),
                tags: vec![],
                source: None,
            },
        };
        let b = encode_opening(&o);
        assert_eq!(decode_opening(3, &b).unwrap(), o);
        assert!(decode_opening(3, &b[..b.len() - 1]).is_err());
    }
}
