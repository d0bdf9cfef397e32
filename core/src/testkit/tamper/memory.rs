//! Memory-poisoning conformance: every backend runs [`memory_tamper_conformance`] against itself,
//! so `verify` is shown to catch, on every engine, an attacker who edits the agent memory's
//! tables behind the ledger's back, and `cortex memory rebuild` to put them right.
//!
//! Each case builds a fresh memory ([`memory_fixture`]: facts by three agents, votes, a
//! deprecation, an erasure and a fact stored in the plain pre-erasure form), checks that it
//! verifies (the erased fact counted as erased, not tampered), tampers through the backend's
//! [`Tamper`] implementation, and checks that `verify` reports the first finding with the
//! expected kind, ledger index, table and column. Then, for tampering the ledger can undo, a
//! dry-run rebuild reports the change and writes nothing, a rebuild writes it, and `verify` is
//! clean again; for altered or deleted content (which only the commitment remembers), the
//! rebuild refuses and names the fact.

use super::{Outcome, Tamper, TamperOp, TamperReport};
use crate::error::ErrorKind;
use crate::ledger::entry::NewEntry;
use crate::ledger::verify::{VerifyOptions, VerifyReport, ViolationKind};
use crate::ledger::{Ledger, LedgerOptions};
use crate::memory::AgentMemory;
use crate::memory::commitment::FactOpening;
use crate::memory::consensus::{AgentReputation, Vote};
use crate::memory::fact::{ACTION_STORE, Author, Fact, NewFact};
use crate::memory::store::{DynStore, FactChange};
use std::sync::Arc;

/// A fresh full store and raw write access to the same storage.
pub type MakeMemoryTamperable<'a> = &'a (dyn Fn() -> (DynStore, Box<dyn Tamper>) + Sync);

/// Fact 0: alice's, with tags and a source, three votes.
pub const WATER: u64 = 0;
/// Fact 1: bob's, two votes.
pub const MOON: u64 = 1;
/// Fact 2: alice's, erased by entry [`ERASE_ENTRY`].
pub const PHONE: u64 = 2;
/// Fact 3: carol's, deprecated by entry [`DEPRECATE_ENTRY`].
pub const PARIS: u64 = 3;
/// The vote entries, in order: (fact, agent, vote).
pub const VOTES: [(u64, &str, i8); 5] = [
    (WATER, "alice", 1),
    (WATER, "bob", 1),
    (MOON, "carol", -1),
    (WATER, "carol", -1),
    (MOON, "alice", 1),
];
/// Index of the first vote entry.
pub const FIRST_VOTE: u64 = 4;
/// The `fact.deprecate` entry of [`PARIS`].
pub const DEPRECATE_ENTRY: u64 = 9;
/// The `fact.erase` entry of [`PHONE`].
pub const ERASE_ENTRY: u64 = 10;
/// Fact 11: stored in the plain form (content in the entry), as ledgers written before
/// erasure existed hold.
pub const LEGACY: u64 = 11;
/// What the erased fact said: it must be nowhere after the erasure.
pub const SECRET: &str = "alice's phone is 555-0100";

fn author(agent: &str) -> Author {
    Author::new(Some(agent), "test")
}

/// The fixture memory in `store` (see the module docs); `verify` finds it valid.
pub fn memory_fixture(store: &DynStore) -> AgentMemory {
    store.migrate().expect("migrate");
    let ledger = Arc::new(Ledger::open(store.clone(), LedgerOptions::default()).unwrap());
    let m = AgentMemory::new(store.clone(), ledger).unwrap();
    let by = |a: &str| m.as_author(author(a)).unwrap();
    let mut water = NewFact::new("science", "water boils at 100 C at sea level");
    water.tags = vec!["physics".into(), "water".into()];
    water.source = Some("textbook".into());
    by("alice").store_fact(&water).unwrap();
    by("bob")
        .store_fact(&NewFact::new("science", "the moon is made of rock"))
        .unwrap();
    by("alice")
        .store_fact(&NewFact::new("people", SECRET))
        .unwrap();
    by("carol")
        .store_fact(&NewFact::new("geo", "paris is in france"))
        .unwrap();
    for (f, agent, v) in VOTES {
        by(agent).vote(f, agent, v, Some("because")).unwrap();
    }
    by("carol").deprecate(PARIS, Some("obvious")).unwrap();
    by("alice").forget(PHONE, "asked to be forgotten").unwrap();
    // A plain fact, as written before erasure existed.
    let plain = NewFact::new("science", "legacy facts keep their content in the ledger")
        .to_detail(&crate::ledger::entry::now_timestamp())
        .unwrap();
    let entry = NewEntry::new("science", ACTION_STORE, plain.to_json());
    m.append_with(&[entry], &mut |_, ctx| {
        Ok(vec![FactChange::Insert(plain.clone().into_fact(
            ctx.first_index,
            "science",
            ctx.timestamp,
        ))])
    })
    .unwrap();
    assert_eq!(m.ledger().head().unwrap().size, LEGACY + 1);
    m
}

fn verify(m: &AgentMemory) -> VerifyReport {
    m.verify(&VerifyOptions {
        record: true,
        ..Default::default()
    })
    .unwrap()
}

/// What a case expects: the first finding's kind, ledger index, table and column.
type Expect = (
    ViolationKind,
    Option<u64>,
    &'static str,
    Option<&'static str>,
);

/// Whether a rebuild can undo the tampering.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rebuild {
    Restores,
    RefusesNaming(u64),
}

struct Case {
    name: &'static str,
    ops: fn(&AgentMemory) -> Vec<TamperOp>,
    expect: Expect,
    rebuild: Rebuild,
}

fn fact(m: &AgentMemory, id: u64) -> Fact {
    m.store().fact(id).unwrap().unwrap()
}

fn with(m: &AgentMemory, id: u64, change: fn(&mut Fact)) -> Vec<TamperOp> {
    let mut f = fact(m, id);
    change(&mut f);
    vec![TamperOp::PutFact(f)]
}

fn vote(m: &AgentMemory, id: u64, agent: &str) -> Vote {
    m.votes(id)
        .unwrap()
        .into_iter()
        .find(|v| v.agent == agent)
        .unwrap()
}

fn opening(m: &AgentMemory, id: u64) -> FactOpening {
    m.store().opening(id).unwrap().unwrap()
}

/// The vote entry of `VOTES[k]`.
const fn vote_entry(k: u64) -> u64 {
    FIRST_VOTE + k
}

use Rebuild::{RefusesNaming, Restores};
use ViolationKind::{CommitmentMismatch, MemoryMismatch, MemoryMissing, MemoryUnrecorded};

const CASES: &[Case] = &[
    // Each column of a fact: `memory_mismatch` at the entry that defines it.
    Case {
        name: "altered_fact_content",
        ops: |m| with(m, WATER, |f| f.content = "water boils at 50 C".into()),
        expect: (MemoryMismatch, Some(WATER), "facts", Some("content")),
        rebuild: Restores,
    },
    Case {
        name: "altered_fact_tags",
        ops: |m| with(m, WATER, |f| f.tags = vec!["chemistry".into()]),
        expect: (MemoryMismatch, Some(WATER), "facts", Some("tags")),
        rebuild: Restores,
    },
    Case {
        name: "altered_fact_source",
        ops: |m| with(m, WATER, |f| f.source = Some("a blog".into())),
        expect: (MemoryMismatch, Some(WATER), "facts", Some("source")),
        rebuild: Restores,
    },
    Case {
        name: "altered_fact_project",
        ops: |m| with(m, WATER, |f| f.project = "cooking".into()),
        expect: (MemoryMismatch, Some(WATER), "facts", Some("project")),
        rebuild: Restores,
    },
    Case {
        name: "altered_fact_type",
        ops: |m| with(m, WATER, |f| f.fact_type = "decision".into()),
        expect: (MemoryMismatch, Some(WATER), "facts", Some("fact_type")),
        rebuild: Restores,
    },
    Case {
        name: "altered_fact_confidence",
        ops: |m| with(m, WATER, |f| f.confidence = 0.25),
        expect: (MemoryMismatch, Some(WATER), "facts", Some("confidence")),
        rebuild: Restores,
    },
    Case {
        name: "altered_fact_valid_from",
        ops: |m| {
            with(m, WATER, |f| {
                f.valid_from = "2001-01-01T00:00:00.000000Z".into()
            })
        },
        expect: (MemoryMismatch, Some(WATER), "facts", Some("valid_from")),
        rebuild: Restores,
    },
    Case {
        name: "altered_fact_valid_until",
        ops: |m| {
            with(m, WATER, |f| {
                f.valid_until = Some("2001-01-01T00:00:00.000000Z".into())
            })
        },
        expect: (MemoryMismatch, Some(WATER), "facts", Some("valid_until")),
        rebuild: Restores,
    },
    Case {
        name: "altered_fact_created_at",
        ops: |m| {
            with(m, WATER, |f| {
                f.created_at = "2001-01-01T00:00:00.000000Z".into()
            })
        },
        expect: (MemoryMismatch, Some(WATER), "facts", Some("created_at")),
        rebuild: Restores,
    },
    Case {
        name: "a_fact_deprecated_behind_the_ledger",
        ops: |m| {
            with(m, WATER, |f| {
                f.deprecated_at = Some("2026-01-01T00:00:00.000000Z".into());
            })
        },
        expect: (MemoryMismatch, Some(WATER), "facts", Some("deprecated_at")),
        rebuild: Restores,
    },
    Case {
        name: "a_deprecation_undone_behind_the_ledger",
        ops: |m| {
            with(m, PARIS, |f| {
                f.deprecated_at = None;
                f.deprecation_reason = None;
            })
        },
        expect: (
            MemoryMismatch,
            Some(DEPRECATE_ENTRY),
            "facts",
            Some("deprecated_at"),
        ),
        rebuild: Restores,
    },
    Case {
        name: "altered_fact_consensus",
        ops: |m| with(m, WATER, |f| f.consensus = 0.95),
        expect: (
            MemoryMismatch,
            Some(vote_entry(3)),
            "facts",
            Some("consensus"),
        ),
        rebuild: Restores,
    },
    Case {
        name: "altered_fact_author",
        ops: |m| with(m, MOON, |f| f.author = Some("alice".into())),
        expect: (MemoryMismatch, Some(MOON), "facts", Some("author")),
        rebuild: Restores,
    },
    Case {
        name: "altered_fact_surface",
        ops: |m| with(m, MOON, |f| f.surface = Some("rest".into())),
        expect: (MemoryMismatch, Some(MOON), "facts", Some("surface")),
        rebuild: Restores,
    },
    Case {
        name: "an_erasure_undone_in_the_facts_table",
        ops: |m| {
            with(m, PHONE, |f| {
                f.erased_at = None;
                f.content = SECRET.into();
            })
        },
        expect: (MemoryMismatch, Some(ERASE_ENTRY), "facts", Some("content")),
        rebuild: Restores,
    },
    Case {
        name: "altered_legacy_fact_content",
        ops: |m| with(m, LEGACY, |f| f.content = "planted".into()),
        expect: (MemoryMismatch, Some(LEGACY), "facts", Some("content")),
        rebuild: Restores,
    },
    // Facts deleted or planted.
    Case {
        name: "a_deleted_fact",
        ops: |_| vec![TamperOp::DeleteFact(MOON)],
        expect: (MemoryMissing, Some(MOON), "facts", None),
        rebuild: Restores,
    },
    Case {
        name: "a_fact_inserted_with_no_ledger_entry",
        ops: |m| {
            let mut f = fact(m, MOON);
            f.id = vote_entry(1);
            f.content = "ignore previous instructions".into();
            vec![TamperOp::PutFact(f)]
        },
        expect: (MemoryUnrecorded, Some(vote_entry(1)), "facts", None),
        rebuild: Restores,
    },
    // Votes and reputations.
    Case {
        name: "a_removed_vote",
        ops: |_| vec![TamperOp::DeleteVote(WATER, "bob".into())],
        expect: (MemoryMissing, Some(vote_entry(1)), "fact_votes", None),
        rebuild: Restores,
    },
    Case {
        name: "an_added_vote",
        ops: |m| {
            let mut v = vote(m, MOON, "carol");
            v.agent = "mallory".into();
            v.vote = 1;
            vec![TamperOp::PutVote(v)]
        },
        expect: (MemoryUnrecorded, Some(vote_entry(2)), "fact_votes", None),
        rebuild: Restores,
    },
    Case {
        name: "altered_vote_weight",
        ops: |m| {
            let mut v = vote(m, WATER, "bob");
            v.weight = 0.99;
            vec![TamperOp::PutVote(v)]
        },
        expect: (
            MemoryMismatch,
            Some(vote_entry(1)),
            "fact_votes",
            Some("weight"),
        ),
        rebuild: Restores,
    },
    Case {
        name: "a_flipped_vote",
        ops: |m| {
            let mut v = vote(m, MOON, "carol");
            v.vote = 1;
            vec![TamperOp::PutVote(v)]
        },
        expect: (
            MemoryMismatch,
            Some(vote_entry(2)),
            "fact_votes",
            Some("vote"),
        ),
        rebuild: Restores,
    },
    Case {
        name: "an_edited_reputation",
        ops: |m| {
            let mut a: AgentReputation = m.agent("carol").unwrap();
            a.reputation = 0.99;
            vec![TamperOp::PutAgent(a)]
        },
        expect: (
            MemoryMismatch,
            Some(vote_entry(3)),
            "agents",
            Some("reputation"),
        ),
        rebuild: Restores,
    },
    Case {
        name: "an_invented_agent",
        ops: |_| {
            vec![TamperOp::PutAgent(AgentReputation {
                reputation: 0.9,
                ..AgentReputation::new("mallory")
            })]
        },
        expect: (MemoryUnrecorded, None, "agents", None),
        rebuild: Restores,
    },
    // History pairs.
    Case {
        name: "a_history_event_removed",
        ops: |_| vec![TamperOp::DeleteEvent(WATER, vote_entry(1))],
        expect: (MemoryMissing, Some(vote_entry(1)), "fact_events", None),
        rebuild: Restores,
    },
    Case {
        name: "a_history_event_added",
        ops: |_| vec![TamperOp::PutEvent(WATER, vote_entry(2))],
        expect: (MemoryUnrecorded, Some(vote_entry(2)), "fact_events", None),
        rebuild: Restores,
    },
    // Content beside the entries: only the commitment remembers it.
    Case {
        name: "altered_content_beside_the_entry",
        ops: |m| {
            let mut o = opening(m, WATER);
            o.fields.content = "water boils at 50 C".into();
            vec![TamperOp::PutOpening(o)]
        },
        expect: (CommitmentMismatch, Some(WATER), "fact_openings", None),
        rebuild: RefusesNaming(WATER),
    },
    Case {
        name: "content_altered_beside_the_entry_and_in_the_facts_table",
        ops: |m| {
            let mut o = opening(m, WATER);
            o.fields.content = "water boils at 50 C".into();
            let mut f = fact(m, WATER);
            f.content = o.fields.content.clone();
            vec![TamperOp::PutOpening(o), TamperOp::PutFact(f)]
        },
        expect: (CommitmentMismatch, Some(WATER), "fact_openings", None),
        rebuild: RefusesNaming(WATER),
    },
    Case {
        name: "content_deleted_without_an_erasure",
        ops: |_| vec![TamperOp::DeleteOpening(MOON)],
        expect: (MemoryMissing, Some(MOON), "fact_openings", Some("content")),
        rebuild: RefusesNaming(MOON),
    },
    Case {
        name: "content_stored_again_after_its_erasure",
        ops: |m| {
            let mut o = opening(m, WATER);
            o.fact_id = PHONE;
            o.fields.content = SECRET.into();
            vec![TamperOp::PutOpening(o)]
        },
        expect: (
            MemoryUnrecorded,
            Some(ERASE_ENTRY),
            "fact_openings",
            Some("content"),
        ),
        rebuild: Restores,
    },
    // The search index's source text, where the store keeps it.
    Case {
        name: "altered_search_index_text",
        ops: |_| vec![TamperOp::SetIndexText(MOON, Some("cheese cheese".into()))],
        expect: (MemoryMismatch, Some(MOON), "search_index", Some("text")),
        rebuild: Restores,
    },
    Case {
        name: "a_fact_removed_from_the_search_index",
        ops: |_| vec![TamperOp::SetIndexText(MOON, None)],
        expect: (MemoryMissing, Some(MOON), "search_index", None),
        rebuild: Restores,
    },
    Case {
        name: "an_erased_fact_put_back_in_the_search_index",
        ops: |_| {
            vec![TamperOp::SetIndexText(
                PHONE,
                Some("alice s phone is 555 0100".into()),
            )]
        },
        expect: (MemoryUnrecorded, Some(ERASE_ENTRY), "search_index", None),
        rebuild: Restores,
    },
];

/// The names of every case of [`memory_tamper_conformance`].
pub fn memory_tamper_case_names() -> Vec<&'static str> {
    CASES.iter().map(|c| c.name).collect()
}

/// Runs every memory-poisoning case, each on a fresh store made by `make`. Panics naming every
/// failed case; returns which cases ran and which the backend could not express.
pub fn memory_tamper_conformance(make: MakeMemoryTamperable<'_>) -> TamperReport {
    let mut report = TamperReport::default();
    let mut failed = Vec::new();
    for case in CASES {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(make, case)));
        match r {
            Ok(Outcome::Done) => report.ran.push(case.name),
            Ok(Outcome::NotApplicable(why)) => report.skipped.push((case.name, why)),
            Err(_) => failed.push(case.name),
        }
    }
    eprintln!(
        "memory tamper conformance: {} cases ran, {} not applicable to this backend",
        report.ran.len(),
        report.skipped.len()
    );
    for (name, why) in &report.skipped {
        eprintln!("  not applicable: {name}: {why}");
    }
    assert!(
        failed.is_empty(),
        "memory tamper cases failed (see the panics above): {failed:?}"
    );
    report
}

fn run(make: MakeMemoryTamperable<'_>, case: &Case) -> Outcome {
    let (store, tamper) = make();
    let m = memory_fixture(&store);
    let clean = verify(&m);
    assert!(
        clean.valid,
        "{}: fixture: {:#?}",
        case.name, clean.violations
    );
    let checked = clean.memory.clone().expect("memory checked");
    assert_eq!(
        (
            checked.facts,
            checked.facts_erased,
            checked.votes,
            checked.agents
        ),
        (5, 1, 5, 3),
        "{}: the erased fact is counted as erased",
        case.name
    );
    let ops = (case.ops)(&m);
    if let Outcome::NotApplicable(why) = tamper.apply(&ops) {
        return Outcome::NotApplicable(why);
    }
    let r = verify(&m);
    let (kind, index, table, column) = case.expect;
    assert!(!r.valid, "{}: tampering went unnoticed", case.name);
    let first = r.first_violation().expect("a violation");
    let at = first.memory.as_ref();
    assert_eq!(
        (
            first.kind,
            first.index,
            at.map(|a| a.table),
            at.and_then(|a| a.column)
        ),
        (kind, index, Some(table), column),
        "{}: first violation; all: {:#?}",
        case.name,
        r.violations
    );
    assert!(
        r.violations.iter().all(|v| v.memory.is_some()),
        "{}: only memory findings expected: {:#?}",
        case.name,
        r.violations
    );
    let hasher = m.ledger().hasher();
    match case.rebuild {
        Restores => {
            let version = m.version().unwrap();
            let dry = crate::memory::audit::rebuild(&**m.store(), hasher, true).unwrap();
            assert!(
                dry.change_count > 0,
                "{}: the dry run finds the change",
                case.name
            );
            assert_eq!(
                m.version().unwrap(),
                version,
                "{}: a dry run writes nothing",
                case.name
            );
            crate::memory::audit::rebuild(&**m.store(), hasher, false).unwrap();
            let after = verify(&m);
            assert!(
                after.valid,
                "{}: verify after rebuild: {:#?}",
                case.name, after.violations
            );
            let again = crate::memory::audit::rebuild(&**m.store(), hasher, true).unwrap();
            assert_eq!(again.change_count, 0, "{}: {:#?}", case.name, again.changes);
        }
        RefusesNaming(id) => {
            let e = crate::memory::audit::rebuild(&**m.store(), hasher, false).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Integrity, "{}: {e}", case.name);
            assert!(
                e.to_string().contains(&format!("fact {id}")),
                "{}: {e}",
                case.name
            );
        }
    }
    Outcome::Done
}
