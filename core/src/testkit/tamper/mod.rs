//! Tamper-detection conformance (feature `testkit`): every backend crate runs
//! [`tamper_conformance`] against itself, so `verify` is shown to catch the same tampering on
//! every engine.
//!
//! Each case builds a fresh ledger of 100 varied entries appended in batches (automatic
//! checkpoints every 16 entries give checkpoints of sizes 27, 60, 85 and 97, and a final one of
//! 100 is made on demand), checks that `verify` finds it valid, then tampers with the
//! storage *around* the ledger, as someone with write access to the database would, through the
//! backend's [`Tamper`] implementation, and checks that `verify` reports the first violation with
//! the expected kind and exact index, and records the run in `integrity_checks`.
//!
//! [`Tamper`] is a test-only trait, deliberately not part of [`crate::memory::store::Store`]: a handful of raw
//! writes ([`TamperOp`]) that every engine can express on its own storage (a separate SQL
//! connection, a raw key-value transaction). Swaps, shifts and re-chained rows are composed from
//! them here, so every backend gets exactly the same tampering. An operation a backend cannot
//! represent (the memory store keeps hashes as 32-byte arrays, so it cannot hold a 31-byte hash)
//! is [`Outcome::NotApplicable`]; the case is then skipped and listed in the returned
//! [`TamperReport`], which each backend's test compares with the list it expects.
//!
//! This module holds the [`Tamper`] trait and its operations, the runner and the list of cases;
//! the fixture ledger and the helpers the cases share are in `fixture`, the cases themselves in
//! `rows`, `head`, `checkpoints` and `tiles` (by what they tamper with), and [`TestSigner`] in
//! `signer`.

mod checkpoints;
mod fixture;
mod head;
mod memory;
mod rows;
mod signer;
mod tiles;

pub use fixture::{
    CHECKPOINTS, ORIGIN, ROW, SIZE, alter_char, alter_mid, fixture_ledger, tamper_entry,
};
pub use memory::{
    MakeMemoryTamperable, memory_fixture, memory_tamper_case_names, memory_tamper_conformance,
};
pub use signer::{TestSigner, test_signer};

use crate::ledger::checkpoint::CheckpointRecord;
use crate::ledger::entry::EntryRef;
use crate::ledger::hash::Hash;
use crate::ledger::signer::Signer;
use crate::ledger::store::{DynLedgerStore, Head};
use checkpoints::{
    altered_note_body, altered_range_count, altered_range_start, altered_root, altered_signature,
    checkpoint_moved, deleted_checkpoint, impostor_signature, malformed_root,
};
use head::{
    altered_head_hash, appended_past_head, appended_past_head_moved, head_moved_back,
    head_past_last_row, truncated_tail, truncated_tail_head_moved,
};
use rows::{
    adjacent_swapped_rows, altered_action, altered_detail, altered_hash, altered_prev_hash,
    altered_project, altered_row_rechained, altered_timestamp, deleted_row,
    deleted_row_shifted_down, deleted_rows, first_row_deleted, inserted_row_bogus_hash,
    inserted_row_linked, inserted_row_rechained, malformed_hash, rows_swapped_across_tiles,
    swapped_rows,
};
use std::ops::Range;
use std::sync::Arc;
use tiles::{
    altered_inner_leaf_tile, altered_leaf_tile, altered_upper_tile,
    bad_tile_between_identical_entries, deleted_leaf_tile, deleted_upper_tile, malformed_tile,
};

/// A ledger row exactly as stored: fields as text, chain hashes as raw bytes (of any length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// The row's index (its key).
    pub index: u64,
    /// Stored timestamp.
    pub timestamp: String,
    /// Stored project.
    pub project: String,
    /// Stored action.
    pub action: String,
    /// Stored detail.
    pub detail: String,
    /// Stored `prev_hash` bytes.
    pub prev_hash: Vec<u8>,
    /// Stored `hash` bytes.
    pub hash: Vec<u8>,
}

impl RawRow {
    /// The row's Merkle leaf hash under `hasher`.
    pub fn leaf(&self, hasher: &dyn crate::ledger::hash::Hasher) -> Hash {
        EntryRef {
            index: self.index,
            timestamp: &self.timestamp,
            project: &self.project,
            action: &self.action,
            detail: &self.detail,
        }
        .leaf_hash(hasher, &mut Vec::new())
    }
}

/// One raw write to a store's storage, bypassing the ledger (and every check it makes).
#[derive(Debug, Clone, PartialEq)]
pub enum TamperOp {
    /// Writes the ledger row at `row.index`, replacing any row stored there.
    PutEntry(RawRow),
    /// Deletes the ledger rows whose index is in the range (absent rows are ignored).
    DeleteEntries(Range<u64>),
    /// Overwrites the stored head (size and last chain hash).
    SetHead(Head),
    /// Writes the raw bytes of tile (`level`, `index`), replacing any stored tile.
    PutTile {
        /// Tile level.
        level: u8,
        /// Tile index within the level.
        index: u64,
        /// The bytes (any length, not necessarily a multiple of 32).
        bytes: Vec<u8>,
    },
    /// Deletes tile (`level`, `index`).
    DeleteTile {
        /// Tile level.
        level: u8,
        /// Tile index within the level.
        index: u64,
    },
    /// Writes the checkpoint of `size`: its root, range start and count, and note, inserting it
    /// if there is none of that size (receipts and extra signatures are left as they are).
    PutCheckpoint(CheckpointRecord),
    /// Stores, as the root of the checkpoint of this size, a value that is not a hash in the
    /// backend's own representation (text that is not hex, bytes that are not 32 long).
    MalformCheckpointRoot(u64),
    /// Deletes the checkpoint of this size.
    DeleteCheckpoint(u64),
    /// Writes a row of the facts table (every column as given), replacing any row of that id.
    /// The search index is left as it is.
    PutFact(crate::memory::fact::Fact),
    /// Deletes a row of the facts table (the search index is left as it is).
    DeleteFact(u64),
    /// Writes a stored opening, replacing any of that fact.
    PutOpening(crate::memory::commitment::FactOpening),
    /// Deletes a fact's stored opening.
    DeleteOpening(u64),
    /// Writes a vote row, replacing any of that (fact, agent).
    PutVote(crate::memory::consensus::Vote),
    /// Deletes the vote row of (fact, agent).
    DeleteVote(u64, String),
    /// Writes an agent's reputation row, replacing any of that agent.
    PutAgent(crate::memory::consensus::AgentReputation),
    /// Adds a (fact, entry) pair to a fact's history.
    PutEvent(u64, u64),
    /// Deletes a (fact, entry) pair from a fact's history.
    DeleteEvent(u64, u64),
    /// Sets the text the search index holds for a fact (`None`: takes the fact out of the
    /// index). Not applicable to a store that keeps no index text
    /// ([`FactStore::keeps_index_text`](crate::memory::store::FactStore::keeps_index_text)).
    SetIndexText(u64, Option<String>),
}

/// What a backend did with a [`Tamper::apply`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// Every operation was written.
    Done,
    /// The backend cannot represent one of the operations (the reason says which); nothing was
    /// written.
    NotApplicable(String),
}

/// Raw write access to a backend's storage, for tamper-detection tests only: what an attacker
/// with write access to the database (a separate connection, the file's tables) can do.
pub trait Tamper {
    /// Applies `ops` in order, in one transaction where the engine has them. Returns
    /// [`Outcome::NotApplicable`], having written nothing, if the backend cannot represent one of
    /// them; panics if the storage fails.
    fn apply(&self, ops: &[TamperOp]) -> Outcome;
}

impl<T: Tamper + ?Sized> Tamper for Arc<T> {
    fn apply(&self, ops: &[TamperOp]) -> Outcome {
        (**self).apply(ops)
    }
}

/// Which cases ran and which were skipped (with the reason) on a backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TamperReport {
    /// Names of the cases that ran (and passed).
    pub ran: Vec<&'static str>,
    /// Names of the cases skipped because the backend cannot express their tampering, with the
    /// reason it gave.
    pub skipped: Vec<(&'static str, String)>,
}

impl TamperReport {
    /// The names of the skipped cases.
    pub fn skipped_names(&self) -> Vec<&'static str> {
        self.skipped.iter().map(|s| s.0).collect()
    }
}

/// A fresh store and raw write access to the same storage.
pub type MakeTamperable<'a> = &'a (dyn Fn() -> (DynLedgerStore, Box<dyn Tamper>) + Sync);
/// Makes a new note signer with the given key name (a different key on every call).
pub type NewSigner<'a> = &'a (dyn Fn(&str) -> Arc<dyn Signer> + Sync);

/// Cases run at once (each on its own store; most of a case's time is commits).
const PARALLEL_CASES: usize = 4;

/// Runs every tamper-detection case, each on a fresh store made by `make`, with note signers
/// made by `new_signer`, a few cases at a time. Panics naming every failed case; returns which
/// cases ran and which were skipped as not applicable (also written to stderr).
pub fn tamper_conformance(make: MakeTamperable<'_>, new_signer: NewSigner<'_>) -> TamperReport {
    let (report, failed) = run_cases(make, new_signer);
    {
        use std::io::Write;
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "tamper conformance: {} cases ran, {} not applicable to this backend",
            report.ran.len(),
            report.skipped.len()
        );
        for (name, why) in &report.skipped {
            let _ = writeln!(err, "  not applicable: {name}: {why}");
        }
    }
    assert!(
        failed.is_empty(),
        "tamper-detection cases failed (see the panics above): {failed:?}"
    );
    report
}

/// Runs every case; returns what ran or was skipped, and the names of the cases that failed.
fn run_cases(
    make: MakeTamperable<'_>,
    new_signer: NewSigner<'_>,
) -> (TamperReport, Vec<&'static str>) {
    let env = Env { make, new_signer };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, std::thread::Result<std::result::Result<(), Skip>>)> =
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..PARALLEL_CASES)
                .map(|_| {
                    s.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some((_, case)) = CASES.get(k) else {
                                return mine;
                            };
                            let env = &env;
                            mine.push((
                                k,
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    case(env)
                                })),
                            ));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("tamper worker"))
                .collect()
        });
    results.sort_by_key(|r| r.0);
    let mut report = TamperReport::default();
    let mut failed = Vec::new();
    for (k, result) in results {
        let name = CASES[k].0;
        match result {
            Ok(Ok(())) => report.ran.push(name),
            Ok(Err(Skip(why))) => report.skipped.push((name, why)),
            Err(_) => failed.push(name),
        }
    }
    (report, failed)
}

/// The names of every case of [`tamper_conformance`], in the order it lists them.
pub fn tamper_case_names() -> Vec<&'static str> {
    CASES.iter().map(|c| c.0).collect()
}

struct Env<'a> {
    make: MakeTamperable<'a>,
    new_signer: NewSigner<'a>,
}

/// A case could not tamper as it needs: the backend cannot represent the change.
struct Skip(String);

type Case = fn(&Env<'_>) -> std::result::Result<(), Skip>;

type R = std::result::Result<(), Skip>;

const CASES: &[(&str, Case)] = &[
    // One field of one row altered: `altered_entry` at that row.
    ("altered_timestamp_is_an_altered_entry", altered_timestamp),
    ("altered_project_is_an_altered_entry", altered_project),
    ("altered_action_is_an_altered_entry", altered_action),
    ("altered_detail_is_an_altered_entry", altered_detail),
    ("altered_prev_hash_is_an_altered_entry", altered_prev_hash),
    (
        "altered_hash_is_an_altered_entry_not_a_broken_chain_at_the_next_row",
        altered_hash,
    ),
    ("a_malformed_hash_is_an_altered_entry", malformed_hash),
    (
        "an_altered_row_rechained_to_the_end_is_still_found",
        altered_row_rechained,
    ),
    // Rows deleted, swapped, inserted; the tail truncated.
    ("a_deleted_row_is_a_missing_entry", deleted_row),
    ("deleted_rows_are_one_missing_range", deleted_rows),
    (
        "the_first_row_deleted_is_a_missing_entry",
        first_row_deleted,
    ),
    (
        "a_deleted_row_with_the_rest_shifted_down_is_a_missing_entry",
        deleted_row_shifted_down,
    ),
    (
        "swapped_rows_are_reordered_entries_at_both_indices",
        swapped_rows,
    ),
    (
        "adjacent_swapped_rows_are_reordered_entries",
        adjacent_swapped_rows,
    ),
    (
        "rows_swapped_across_tiles_are_reordered_entries",
        rows_swapped_across_tiles,
    ),
    (
        "an_inserted_row_with_a_bogus_hash_is_an_inserted_entry",
        inserted_row_bogus_hash,
    ),
    (
        "an_inserted_row_with_a_correct_chain_link_is_an_inserted_entry",
        inserted_row_linked,
    ),
    (
        "an_inserted_row_with_everything_after_it_rechained_is_an_inserted_entry",
        inserted_row_rechained,
    ),
    (
        "a_row_appended_past_the_head_is_an_inserted_entry",
        appended_past_head,
    ),
    (
        "a_row_appended_past_the_head_with_the_head_moved_is_an_inserted_entry",
        appended_past_head_moved,
    ),
    (
        "a_truncated_tail_is_truncation_at_the_first_missing_index",
        truncated_tail,
    ),
    (
        "a_truncated_tail_with_the_head_moved_is_truncation_and_blocks_checkpoints",
        truncated_tail_head_moved,
    ),
    ("an_altered_head_hash_is_a_broken_chain", altered_head_hash),
    ("a_head_past_the_last_row_is_truncation", head_past_last_row),
    (
        "a_head_moved_back_over_signed_rows_is_truncation",
        head_moved_back,
    ),
    // Checkpoints and tiles.
    ("an_altered_root_column_is_a_bad_root", altered_root),
    ("a_malformed_root_column_is_a_bad_root", malformed_root),
    ("an_altered_signature_is_a_bad_signature", altered_signature),
    ("an_altered_note_body_is_a_bad_signature", altered_note_body),
    (
        "a_note_signed_by_another_key_of_the_same_name_is_a_bad_signature",
        impostor_signature,
    ),
    (
        "an_altered_leaf_tile_is_a_bad_tile_and_blocks_checkpoints",
        altered_leaf_tile,
    ),
    (
        "an_altered_inner_leaf_tile_is_a_bad_tile",
        altered_inner_leaf_tile,
    ),
    ("an_altered_upper_tile_is_a_bad_tile", altered_upper_tile),
    (
        "a_bad_tile_between_identical_entries_is_not_taken_for_shifted_rows",
        bad_tile_between_identical_entries,
    ),
    ("a_malformed_tile_is_a_bad_tile", malformed_tile),
    ("a_deleted_leaf_tile_is_a_bad_tile", deleted_leaf_tile),
    ("a_deleted_upper_tile_is_a_bad_tile", deleted_upper_tile),
    (
        "an_altered_range_start_is_inconsistent_checkpoints",
        altered_range_start,
    ),
    (
        "an_altered_range_count_is_inconsistent_checkpoints",
        altered_range_count,
    ),
    (
        "a_deleted_checkpoint_is_inconsistent_checkpoints",
        deleted_checkpoint,
    ),
    (
        "a_checkpoint_moved_to_another_size_is_a_bad_root",
        checkpoint_moved,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::in_memory::InMemoryStore;

    /// Writes nothing and says it did.
    struct Forgetful;

    impl Tamper for Forgetful {
        fn apply(&self, _: &[TamperOp]) -> Outcome {
            Outcome::Done
        }
    }

    /// Every case can fail: when the tampering does not happen, each one notices.
    #[test]
    fn every_case_fails_when_nothing_is_tampered() {
        let (report, failed) = run_cases(
            &|| {
                (
                    Arc::new(InMemoryStore::new()) as DynLedgerStore,
                    Box::new(Forgetful) as Box<dyn Tamper>,
                )
            },
            &test_signer,
        );
        assert_eq!(report, TamperReport::default());
        assert_eq!(failed, tamper_case_names());
    }

    #[test]
    fn test_signer_conformance() {
        crate::testkit::signer_conformance(&TestSigner::generate(ORIGIN));
        let (a, b) = (TestSigner::generate(ORIGIN), TestSigner::generate(ORIGIN));
        assert_ne!(
            Signer::note_key_id(&a),
            Signer::note_key_id(&b),
            "every key is new"
        );
        let sig = a.sign(b"m").unwrap();
        assert!(b.verifier().verify(b"m", &sig).is_err());
    }
}
