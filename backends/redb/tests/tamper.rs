//! The redb backend against core's shared tamper-detection suite
//! (`cortex_core::testkit::tamper::tamper_conformance`).
//!
//! redb admits one open handle per file, so the tampering goes through the store's own
//! `redb::Database` (`RedbStore::raw_database_for_tests`), in raw write transactions on the
//! tables and byte encodings the backend uses: the same bytes someone editing the file while the
//! service is down would leave (the store keeps no ledger state in memory). The record encodings
//! are written out here independently of the backend's codec.

use cortex_core::testkit::tamper::{
    Outcome, RawRow, Tamper, TamperOp, tamper_case_names, tamper_conformance,
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

/// The backend's record layout: a version byte (1), then big-endian u64s and byte strings
/// prefixed by their big-endian u32 length.
struct Rec(Vec<u8>);

impl Rec {
    fn new() -> Rec {
        Rec(vec![1])
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

/// Raw write transactions on the store's database (one per call).
struct RedbTamper(Arc<RedbStore>);

impl Tamper for RedbTamper {
    fn apply(&self, ops: &[TamperOp]) -> Outcome {
        let tx = self.0.raw_database_for_tests().begin_write().unwrap();
        {
            let mut entries = tx.open_table(ENTRIES).unwrap();
            let mut state = tx.open_table(STATE).unwrap();
            let mut tiles = tx.open_table(TILES).unwrap();
            let mut checkpoints = tx.open_table(CHECKPOINTS).unwrap();
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
