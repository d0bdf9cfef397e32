//! The redb backend against core's shared tamper-detection suites
//! (`cortex_core::testkit::tamper::tamper_conformance` for the ledger,
//! `memory_tamper_conformance` for the agent memory).
//!
//! redb admits one open handle per file, so the tampering goes through the store's own
//! `redb::Database` (`RedbStore::raw_database_for_tests`), in raw write transactions on the
//! tables and byte encodings the backend uses: the same bytes someone editing the file while the
//! service is down would leave (the store keeps no ledger state in memory). The record encodings
//! are written out here independently of the backend's codec.

use cortex_core::memory::commitment::FactOpening;
use cortex_core::memory::consensus::{AgentReputation, Vote};
use cortex_core::memory::fact::Fact;
use cortex_core::testkit::tamper::{
    Outcome, RawRow, Tamper, TamperOp, memory_tamper_case_names, memory_tamper_conformance,
    tamper_case_names, tamper_conformance,
};
use cortex_core::{CheckpointRecord, DynStore, Head, Signer};
use cortex_ed25519::Ed25519Signer;
use cortex_redb::RedbStore;
use redb::{ReadableTable, TableDefinition};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const ENTRIES: TableDefinition<&[u8; 8], &[u8]> = TableDefinition::new("entries");
const TILES: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("merkle_tiles");
const CHECKPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("checkpoints");
const FACTS: TableDefinition<u64, &[u8]> = TableDefinition::new("facts");
const FACTS_BY_PROJECT: TableDefinition<(&str, u64), ()> = TableDefinition::new("facts_by_project");
const FACT_OPENINGS: TableDefinition<u64, &[u8]> = TableDefinition::new("fact_openings");
const VOTES: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("fact_votes");
const AGENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("agents");
const FACT_EVENTS: TableDefinition<(u64, u64), ()> = TableDefinition::new("fact_events");

/// The backend's record layout: a version byte (1; 2 for facts), then big-endian u64s, floats as
/// their bits, byte strings prefixed by their big-endian u32 length, optional strings as a 0
/// byte or a 1 byte and the string, string lists as their u64 count and the strings.
struct Rec(Vec<u8>);

impl Rec {
    fn new() -> Rec {
        Rec(vec![1])
    }
    fn fact() -> Rec {
        Rec(vec![2])
    }
    fn f64(self, v: f64) -> Rec {
        self.u64(v.to_bits())
    }
    fn str(self, s: &str) -> Rec {
        self.bytes(s.as_bytes())
    }
    fn opt(mut self, s: Option<&str>) -> Rec {
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
    fn strs(self, v: &[String]) -> Rec {
        v.iter().fold(self.u64(v.len() as u64), |r, s| r.str(s))
    }
    fn u64(mut self, v: u64) -> Rec {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn bytes(mut self, b: &[u8]) -> Rec {
        self.0
            .extend_from_slice(&u32::try_from(b.len()).unwrap().to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }
}

fn entry_record(r: &RawRow) -> Vec<u8> {
    Rec::new()
        .bytes(r.timestamp.as_bytes())
        .bytes(r.project.as_bytes())
        .bytes(r.action.as_bytes())
        .bytes(r.detail.as_bytes())
        .bytes(&r.prev_hash)
        .bytes(&r.hash)
        .0
}

fn head_record(h: &Head) -> Vec<u8> {
    Rec::new().u64(h.size).bytes(&h.last_hash.0).0
}

fn checkpoint_record(cp: &CheckpointRecord) -> Vec<u8> {
    let mut r = Rec::new()
        .u64(cp.size)
        .u64(cp.range_start)
        .u64(cp.range_count)
        .bytes(&cp.root.0)
        .bytes(cp.note.as_bytes())
        .bytes(cp.created_at.as_bytes())
        .u64(cp.extra_signatures.len() as u64);
    for s in &cp.extra_signatures {
        r = r
            .bytes(s.scheme.as_bytes())
            .bytes(s.key_name.as_bytes())
            .bytes(s.signature.as_bytes());
    }
    r.0
}

fn fact_record(f: &Fact) -> Vec<u8> {
    Rec::fact()
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
        .0
}

fn opening_record(o: &FactOpening) -> Vec<u8> {
    Rec::new()
        .str(&o.salt)
        .str(&o.fields.content)
        .strs(&o.fields.tags)
        .opt(o.fields.source.as_deref())
        .0
}

fn vote_record(v: &Vote) -> Vec<u8> {
    let agreed = match v.agreed {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    };
    Rec::new()
        .u64(v.fact_id)
        .str(&v.agent)
        .u64(i64::from(v.vote) as u64)
        .opt(v.reason.as_deref())
        .f64(v.weight)
        .u64(agreed)
        .u64(v.entry_index)
        .str(&v.voted_at)
        .0
}

fn agent_record(a: &AgentReputation) -> Vec<u8> {
    Rec::new()
        .str(&a.agent)
        .f64(a.reputation)
        .u64(a.votes)
        .u64(a.judged)
        .u64(a.agreed)
        .0
}

/// Raw write transactions on the store's database (one per call). The facts' project index is
/// kept with the facts table, as a SQL engine keeps an index with its table; the search index
/// is in the store's memory, out of an attacker's reach, and keeps no text on disk.
struct RedbTamper(Arc<RedbStore>);

impl Tamper for RedbTamper {
    fn apply(&self, ops: &[TamperOp]) -> Outcome {
        if ops
            .iter()
            .any(|op| matches!(op, TamperOp::SetIndexText(..)))
        {
            return Outcome::NotApplicable(
                "the redb store's search index is built in memory at open and keeps no text".into(),
            );
        }
        let tx = self.0.raw_database_for_tests().begin_write().unwrap();
        {
            let mut entries = tx.open_table(ENTRIES).unwrap();
            let mut state = tx.open_table(STATE).unwrap();
            let mut tiles = tx.open_table(TILES).unwrap();
            let mut checkpoints = tx.open_table(CHECKPOINTS).unwrap();
            let mut facts = tx.open_table(FACTS).unwrap();
            let mut by_project = tx.open_table(FACTS_BY_PROJECT).unwrap();
            let mut openings = tx.open_table(FACT_OPENINGS).unwrap();
            let mut votes = tx.open_table(VOTES).unwrap();
            let mut agents = tx.open_table(AGENTS).unwrap();
            let mut events = tx.open_table(FACT_EVENTS).unwrap();
            // The project a stored fact record names (its second field, after the id).
            let project_of = |b: &[u8]| -> String {
                let n = u32::from_be_bytes(b[9..13].try_into().unwrap()) as usize;
                String::from_utf8(b[13..13 + n].to_vec()).unwrap()
            };
            for op in ops {
                match op {
                    TamperOp::PutEntry(r) => {
                        entries
                            .insert(&r.index.to_be_bytes(), &entry_record(r)[..])
                            .unwrap();
                    }
                    TamperOp::DeleteEntries(range) => {
                        let (start, end) = (range.start.to_be_bytes(), range.end.to_be_bytes());
                        let keys: Vec<[u8; 8]> = entries
                            .range::<&[u8; 8]>(&start..&end)
                            .unwrap()
                            .map(|kv| *kv.unwrap().0.value())
                            .collect();
                        for k in keys {
                            entries.remove(&k).unwrap();
                        }
                    }
                    TamperOp::SetHead(h) => {
                        state.insert("head", &head_record(h)[..]).unwrap();
                    }
                    TamperOp::PutTile {
                        level,
                        index,
                        bytes,
                    } => {
                        tiles.insert((*level, *index), &bytes[..]).unwrap();
                    }
                    TamperOp::DeleteTile { level, index } => {
                        assert!(tiles.remove((*level, *index)).unwrap().is_some());
                    }
                    TamperOp::PutCheckpoint(cp) => {
                        checkpoints
                            .insert(cp.size, &checkpoint_record(cp)[..])
                            .unwrap();
                    }
                    TamperOp::MalformCheckpointRoot(size) => {
                        let old = checkpoints.get(*size).unwrap().unwrap().value().to_vec();
                        // Version, size, range start, range count, then the root's length and
                        // bytes: a 7-byte "root".
                        let at = 1 + 3 * 8;
                        assert_eq!(old[at..at + 4], 32u32.to_be_bytes());
                        let mut new = old[..at].to_vec();
                        new.extend_from_slice(&7u32.to_be_bytes());
                        new.extend_from_slice(b"not hex");
                        new.extend_from_slice(&old[at + 4 + 32..]);
                        checkpoints.insert(*size, &new[..]).unwrap();
                    }
                    TamperOp::DeleteCheckpoint(size) => {
                        assert!(checkpoints.remove(*size).unwrap().is_some());
                    }
                    TamperOp::PutFact(f) => {
                        let old = facts.insert(f.id, &fact_record(f)[..]).unwrap();
                        if let Some(p) = old.map(|v| project_of(v.value())) {
                            by_project.remove((p.as_str(), f.id)).unwrap();
                        }
                        by_project.insert((f.project.as_str(), f.id), ()).unwrap();
                    }
                    TamperOp::DeleteFact(id) => {
                        if let Some(p) = facts.remove(*id).unwrap().map(|v| project_of(v.value())) {
                            by_project.remove((p.as_str(), *id)).unwrap();
                        }
                    }
                    TamperOp::PutOpening(o) => {
                        openings.insert(o.fact_id, &opening_record(o)[..]).unwrap();
                    }
                    TamperOp::DeleteOpening(id) => {
                        openings.remove(*id).unwrap();
                    }
                    TamperOp::PutVote(v) => {
                        votes
                            .insert((v.fact_id, v.agent.as_str()), &vote_record(v)[..])
                            .unwrap();
                    }
                    TamperOp::DeleteVote(f, a) => {
                        votes.remove((*f, a.as_str())).unwrap();
                    }
                    TamperOp::PutAgent(a) => {
                        agents
                            .insert(a.agent.as_str(), &agent_record(a)[..])
                            .unwrap();
                    }
                    TamperOp::PutEvent(f, e) => {
                        events.insert((*f, *e), ()).unwrap();
                    }
                    TamperOp::DeleteEvent(f, e) => {
                        events.remove((*f, *e)).unwrap();
                    }
                    TamperOp::SetIndexText(..) => unreachable!("not applicable, checked above"),
                }
            }
        }
        tx.commit().unwrap();
        Outcome::Done
    }
}

#[test]
fn redb_tamper_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicU32::new(0);
    let report = tamper_conformance(
        &|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let store = Arc::new(RedbStore::open(&dir.path().join(format!("t{i}.redb"))).unwrap());
            (
                store.clone() as DynStore,
                Box::new(RedbTamper(store)) as Box<dyn Tamper>,
            )
        },
        &|name| Arc::new(Ed25519Signer::generate(name).unwrap()) as Arc<dyn Signer>,
    );
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.ran, tamper_case_names());
}

/// Every memory-poisoning case runs except the three on the search index's text: this store's
/// index is built in memory from the facts table at open and keeps no text on disk.
#[test]
fn redb_memory_tamper_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicU32::new(0);
    let report = memory_tamper_conformance(&|| {
        let i = n.fetch_add(1, Ordering::Relaxed);
        let store = Arc::new(RedbStore::open(&dir.path().join(format!("m{i}.redb"))).unwrap());
        (
            store.clone() as DynStore,
            Box::new(RedbTamper(store)) as Box<dyn Tamper>,
        )
    });
    let text_cases = [
        "altered_search_index_text",
        "a_fact_removed_from_the_search_index",
        "an_erased_fact_put_back_in_the_search_index",
    ];
    assert_eq!(report.skipped_names(), text_cases, "{report:?}");
    let mut all = report.ran.clone();
    all.extend(text_cases);
    all.sort_unstable();
    let mut names = memory_tamper_case_names();
    names.sort_unstable();
    assert_eq!(all, names);
}
