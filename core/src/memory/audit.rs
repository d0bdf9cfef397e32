//! Verification of the agent memory against the ledger, and its rebuild.
//!
//! The memory tables are a view of the ledger: [`verify`] runs the ledger's own verification
//! (which hands back the memory entries as it scans), replays those entries
//! ([`crate::memory::replay`]), and compares the result with every stored memory row
//! ([`scan_memory`](crate::memory::store::FactStore::scan_memory)): each fact column, each
//! vote, each agent record, each history pair, each opening against its commitment, and the
//! search index's source text where the store keeps one. Each difference is a [`Violation`] naming the table, the fact or agent, the
//! column, and the ledger index that defines the true value. Erased facts are counted as
//! erased, never reported as tampered. [`rebuild`] writes the replay in place of the tables.

use crate::error::{Error, ErrorKind, Result};
use crate::ledger::entry::now_timestamp;
use crate::ledger::hash::Hasher;
use crate::ledger::store::IntegrityCheck;
use crate::ledger::verify::{
    MemoryChecked, MemoryRef, VerifyOptions, VerifyReport, Violation, ViolationKind, record_run,
    verify_ledger,
};
use crate::memory::bm25::index_text;
use crate::memory::commitment::FactOpening;
use crate::memory::consensus::{AgentReputation, Vote};
use crate::memory::fact::{Fact, is_memory_action};
use crate::memory::replay::{Replay, ReplayedFact};
use crate::memory::store::{MemoryRow, MemoryState, Store};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Rows by id, in id order: what the store streams (in key order), kept as it comes (cheaper
/// than a tree for 100,000 rows) and looked up by binary search.
#[derive(Debug)]
struct ById<V>(Vec<(u64, V)>);

impl<V> Default for ById<V> {
    fn default() -> Self {
        ById(Vec::new())
    }
}

impl<V> ById<V> {
    fn insert(&mut self, id: u64, v: V) {
        if self.0.last().is_some_and(|(last, _)| *last >= id) {
            // Out of order (not what stores stream, but allowed): keep it sorted and unique.
            match self.0.binary_search_by_key(&id, |(k, _)| *k) {
                Ok(k) => self.0[k] = (id, v),
                Err(k) => self.0.insert(k, (id, v)),
            }
        } else {
            self.0.push((id, v));
        }
    }
    fn get(&self, id: &u64) -> Option<&V> {
        self.0
            .binary_search_by_key(id, |(k, _)| *k)
            .ok()
            .map(|k| &self.0[k].1)
    }
    fn contains_key(&self, id: &u64) -> bool {
        self.get(id).is_some()
    }
    fn keys(&self) -> impl Iterator<Item = &u64> {
        self.0.iter().map(|(k, _)| k)
    }
    fn iter(&self) -> impl Iterator<Item = (&u64, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// The stored memory, read in one snapshot.
#[derive(Debug, Default)]
struct Stored {
    head: u64,
    facts: ById<Fact>,
    openings: ById<FactOpening>,
    votes: BTreeMap<(u64, String), Vote>,
    agents: BTreeMap<String, AgentReputation>,
    events: BTreeSet<(u64, u64)>,
    index_texts: ById<String>,
    undecodable: Vec<(&'static str, String, String)>,
}

impl Stored {
    fn read(store: &dyn Store) -> Result<Stored> {
        let mut s = Stored::default();
        store.scan_memory(&mut |row| {
            match row {
                MemoryRow::Head(h) => s.head = h,
                MemoryRow::Fact(f) => {
                    s.facts.insert(f.id, f);
                }
                MemoryRow::Opening(o) => {
                    s.openings.insert(o.fact_id, o);
                }
                MemoryRow::Vote(v) => {
                    s.votes.insert((v.fact_id, v.agent.clone()), v);
                }
                MemoryRow::Agent(a) => {
                    s.agents.insert(a.agent.clone(), a);
                }
                MemoryRow::Event {
                    fact_id,
                    entry_index,
                } => {
                    s.events.insert((fact_id, entry_index));
                }
                MemoryRow::IndexText { fact_id, text } => {
                    s.index_texts.insert(fact_id, text);
                }
                MemoryRow::Undecodable {
                    table,
                    key,
                    problem,
                } => s.undecodable.push((table, key, problem)),
            }
            Ok(())
        })?;
        Ok(s)
    }
}

/// Verifies the ledger in `store` and the agent memory kept beside it, and records the run if
/// `options.record` asks. The ledger part is exactly
/// [`verify_store`](crate::ledger::verify::verify_store)'s; the memory findings are added to the
/// same report, and [`VerifyReport::memory`] says what was checked.
pub fn verify(
    store: &dyn Store,
    hasher: &dyn Hasher,
    origin: Option<&str>,
    options: &VerifyOptions,
) -> Result<VerifyReport> {
    let started_at = now_timestamp();
    let started = Instant::now();
    let result = verify_inner(store, hasher, origin, options, started);
    record_run(store, options, started_at, &result)?;
    result
}

fn verify_inner(
    store: &dyn Store,
    hasher: &dyn Hasher,
    origin: Option<&str>,
    options: &VerifyOptions,
    started: Instant,
) -> Result<VerifyReport> {
    // The memory snapshot is read beside the ledger scan (the scan hands back the memory
    // entries, so the ledger is read once).
    let (ledger, stored) = std::thread::scope(|s| {
        let rows = s.spawn(|| Stored::read(store));
        let ledger = verify_ledger(store, hasher, origin, options, &is_memory_action);
        (ledger, rows.join())
    });
    let (mut report, mut entries) = ledger?;
    let stored = stored.map_err(|_| Error::backend("memory scan panicked"))??;
    // Replay exactly the entries of the memory's snapshot: those below its head.
    let scanned = report
        .tree_size
        .max(entries.last().map_or(0, |e| e.index + 1));
    if stored.head > scanned {
        store.scan_entries(scanned..stored.head, &mut |r| {
            if is_memory_action(r.entry.action) {
                entries.push(r.entry.to_entry());
            }
            Ok(())
        })?;
    }
    entries.retain(|e| e.index < stored.head);
    let mut replay = Replay::new();
    replay.apply_all(&entries);
    let (found, checked) = compare(hasher, &replay, &stored, store.keeps_index_text());
    // Freeing a few hundred thousand rows takes a while: not on the caller's time.
    std::thread::spawn(move || drop((replay, stored, entries)));
    report.add(found);
    report.memory = Some(checked);
    report.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(report)
}

/// A value shown in a message: text quoted and cut at 60 characters.
fn show(v: &impl std::fmt::Debug) -> String {
    let s = format!("{v:?}");
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

struct Findings(Vec<Violation>);

impl Findings {
    fn push(&mut self, kind: ViolationKind, index: u64, at: MemoryRef, message: String) {
        self.push_at(kind, Some(index), at, message);
    }
    /// A finding no ledger entry defines (a row with no entry at all): no index.
    fn push_at(&mut self, kind: ViolationKind, index: Option<u64>, at: MemoryRef, message: String) {
        self.0.push(Violation {
            kind,
            index,
            checkpoint: None,
            memory: Some(at),
            message,
        });
    }
}

fn fact_ref(table: &'static str, id: u64, column: Option<&'static str>) -> MemoryRef {
    MemoryRef {
        table,
        fact_id: Some(id),
        agent: None,
        column,
    }
}

/// Compares every column of a stored fact with the replayed one.
fn compare_fact(
    out: &mut Findings,
    want: &ReplayedFact,
    have: &Fact,
    content: Option<(&str, &[String], Option<&str>)>,
) {
    let w = &want.fact;
    let id = w.id;
    let deprecated_by = want.deprecated_by.unwrap_or(id);
    let erased_by = want.erased_by.unwrap_or(id);
    macro_rules! col {
        ($name:literal, $field:ident, $by:expr) => {
            if w.$field != have.$field {
                out.push(
                    ViolationKind::MemoryMismatch,
                    $by,
                    fact_ref("facts", id, Some($name)),
                    format!(
                        "fact {id}'s {} is {} in the facts table, but the ledger (entry {}) says {}",
                        $name,
                        show(&have.$field),
                        $by,
                        show(&w.$field)
                    ),
                );
            }
        };
    }
    col!("project", project, id);
    if let Some((content, tags, source)) = content {
        let mut erasable = |name: &'static str, h: String, w: String| {
            out.push(
                ViolationKind::MemoryMismatch,
                erased_by,
                fact_ref("facts", id, Some(name)),
                format!(
                    "fact {id}'s {name} is {h} in the facts table, but the ledger (entry \
                     {erased_by}) says {w}"
                ),
            );
        };
        if have.content != content {
            erasable("content", show(&have.content), show(&content));
        }
        if have.tags != tags {
            erasable("tags", show(&have.tags), show(&tags));
        }
        if have.source.as_deref() != source {
            erasable("source", show(&have.source), show(&source));
        }
    }
    col!("fact_type", fact_type, id);
    if w.confidence.to_bits() != have.confidence.to_bits() {
        col!("confidence", confidence, id);
    }
    col!("valid_from", valid_from, id);
    col!("valid_until", valid_until, id);
    col!("created_at", created_at, id);
    col!("deprecated_at", deprecated_at, deprecated_by);
    col!("deprecation_reason", deprecation_reason, deprecated_by);
    if w.consensus.to_bits() != have.consensus.to_bits() {
        col!("consensus", consensus, want.consensus_by);
    }
    col!("author", author, id);
    col!("surface", surface, id);
    col!("erased_at", erased_at, erased_by);
}

fn compare_vote(out: &mut Findings, want: &Vote, have: &Vote) {
    let at = |column| MemoryRef {
        table: "fact_votes",
        fact_id: Some(want.fact_id),
        agent: Some(want.agent.clone()),
        column: Some(column),
    };
    let by = want.entry_index;
    let mut differ = |column: &'static str, h: String, w: String| {
        out.push(
            ViolationKind::MemoryMismatch,
            by,
            at(column),
            format!(
                "{}'s vote on fact {} has {column} {h} in fact_votes, but the ledger (entry {by}) \
                 says {w}",
                want.agent, want.fact_id
            ),
        );
    };
    if want.vote != have.vote {
        differ("vote", show(&have.vote), show(&want.vote));
    }
    if want.reason != have.reason {
        differ("reason", show(&have.reason), show(&want.reason));
    }
    if want.weight.to_bits() != have.weight.to_bits() {
        differ("weight", show(&have.weight), show(&want.weight));
    }
    if want.agreed != have.agreed {
        differ("agreed", show(&have.agreed), show(&want.agreed));
    }
    if want.entry_index != have.entry_index {
        differ(
            "entry_index",
            show(&have.entry_index),
            show(&want.entry_index),
        );
    }
    if want.voted_at != have.voted_at {
        differ("voted_at", show(&have.voted_at), show(&want.voted_at));
    }
}

fn compare_agent(out: &mut Findings, want: &AgentReputation, by: u64, have: &AgentReputation) {
    let mut differ = |column: &'static str, h: String, w: String| {
        out.push(
            ViolationKind::MemoryMismatch,
            by,
            MemoryRef {
                table: "agents",
                fact_id: None,
                agent: Some(want.agent.clone()),
                column: Some(column),
            },
            format!(
                "agent {}'s {column} is {h} in the agents table, but the ledger (entry {by}) says \
                 {w}",
                show(&want.agent)
            ),
        );
    };
    if want.reputation.to_bits() != have.reputation.to_bits() {
        differ("reputation", show(&have.reputation), show(&want.reputation));
    }
    if want.votes != have.votes {
        differ("votes", show(&have.votes), show(&want.votes));
    }
    if want.judged != have.judged {
        differ("judged", show(&have.judged), show(&want.judged));
    }
    if want.agreed != have.agreed {
        differ("agreed", show(&have.agreed), show(&want.agreed));
    }
}

/// Checks one replayed fact against its stored row, opening and index text. Returns whether
/// it is erased and whether an opening was checked against its commitment.
fn check_fact(
    out: &mut Findings,
    hasher: &dyn Hasher,
    id: u64,
    want: &ReplayedFact,
    stored: &Stored,
    keeps_index_text: bool,
) -> (bool, bool) {
    let erased = want.erased_by.is_some();
    let mut opened = false;
    // The erasable fields the ledger vouches for: the plain detail's, a verified opening's,
    // empty once erased; `None` if unknown (no opening, or one that does not open).
    let mut content: Option<(&str, &[String], Option<&str>)> = None;
    let w = &want.fact;
    if let Some(by) = want.erased_by {
        content = Some(("", &[], None));
        if stored.openings.contains_key(&id) {
            out.push(
                ViolationKind::MemoryUnrecorded,
                by,
                fact_ref("fact_openings", id, Some("content")),
                format!(
                    "fact {id} was erased by entry {by}, but its content and salt are stored again"
                ),
            );
        }
    } else if let Some(c) = &want.commitment {
        match stored.openings.get(&id) {
            None => out.push(
                ViolationKind::MemoryMissing,
                id,
                fact_ref("fact_openings", id, Some("content")),
                format!(
                    "fact {id}'s content and salt are gone, but no fact.erase entry erased it \
                     (its commitment is in entry {id})"
                ),
            ),
            Some(o) => {
                opened = true;
                if o.opens(hasher, c) {
                    let f = &o.fields;
                    content = Some((&f.content, &f.tags, f.source.as_deref()));
                } else {
                    out.push(
                        ViolationKind::CommitmentMismatch,
                        id,
                        fact_ref("fact_openings", id, None),
                        format!(
                            "fact {id}'s stored content and salt do not open the commitment {c} \
                             in entry {id}: the content was altered"
                        ),
                    );
                }
            }
        }
    } else {
        content = Some((&w.content, &w.tags, w.source.as_deref()));
    }
    match stored.facts.get(&id) {
        None => out.push(
            ViolationKind::MemoryMissing,
            id,
            fact_ref("facts", id, None),
            format!("fact {id} is not in the facts table, but entry {id} stored it"),
        ),
        Some(have) => compare_fact(out, want, have, content),
    }
    if keeps_index_text {
        let indexed = stored.index_texts.get(&id);
        match (want.erased_by, content) {
            (Some(by), _) => {
                if indexed.is_some() {
                    out.push(
                        ViolationKind::MemoryUnrecorded,
                        by,
                        fact_ref("search_index", id, None),
                        format!(
                            "fact {id} was erased by entry {by}, but the search index still \
                             holds text for it"
                        ),
                    );
                }
            }
            (None, Some((text, tags, _))) => {
                let text = index_text(text, tags);
                match indexed {
                    None => out.push(
                        ViolationKind::MemoryMissing,
                        id,
                        fact_ref("search_index", id, None),
                        format!("fact {id} is missing from the search index"),
                    ),
                    Some(t) if *t != text => out.push(
                        ViolationKind::MemoryMismatch,
                        id,
                        fact_ref("search_index", id, Some("text")),
                        format!(
                            "the search index holds {} for fact {id}, but its content (entry \
                             {id}) indexes as {}",
                            show(t),
                            show(&text)
                        ),
                    ),
                    Some(_) => {}
                }
            }
            (None, None) => {}
        }
    }
    (erased, opened)
}

/// Compares the replay with the stored rows.
fn compare(
    hasher: &dyn Hasher,
    replay: &Replay,
    stored: &Stored,
    keeps_index_text: bool,
) -> (Vec<Violation>, MemoryChecked) {
    let mut out = Findings(Vec::new());
    let mut checked = MemoryChecked {
        entries_replayed: replay.entries,
        facts: replay.facts.len() as u64,
        votes: replay.votes.len() as u64,
        agents: replay.agents.len() as u64,
        ..MemoryChecked::default()
    };
    for u in &replay.unreplayable {
        out.0.push(Violation {
            kind: ViolationKind::InvalidMemoryEntry,
            index: Some(u.index),
            checkpoint: None,
            memory: None,
            message: format!("entry {} cannot be replayed: {}", u.index, u.problem),
        });
    }
    for (table, key, problem) in &stored.undecodable {
        out.push_at(
            ViolationKind::MemoryMismatch,
            None,
            MemoryRef {
                table,
                ..MemoryRef::default()
            },
            format!("{table} row {key} cannot be read: {problem}"),
        );
    }

    // Facts, their openings and index texts: independent per fact, so checked in parallel
    // chunks (the commitment hashes and the index texts are most of the work), while another
    // thread looks for rows no entry accounts for and checks votes, agents and history.
    let facts: Vec<(&u64, &ReplayedFact)> = replay.facts.iter().collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(facts.len().div_ceil(4096).max(1));
    let per = facts.len().div_ceil(threads).max(1);
    let (parts, others): (Vec<(Findings, u64, u64)>, Findings) = std::thread::scope(|sc| {
        let others = sc.spawn(|| compare_others(replay, stored, keeps_index_text));
        let workers: Vec<_> = facts
            .chunks(per)
            .map(|chunk| {
                sc.spawn(move || {
                    let mut f = Findings(Vec::new());
                    let (mut erased, mut opened) = (0, 0);
                    for (id, want) in chunk {
                        let (e, o) =
                            check_fact(&mut f, hasher, **id, want, stored, keeps_index_text);
                        erased += u64::from(e);
                        opened += u64::from(o);
                    }
                    (f, erased, opened)
                })
            })
            .collect();
        let parts = workers
            .into_iter()
            .map(|w| w.join().expect("memory check worker panicked"))
            .collect();
        (parts, others.join().expect("memory check worker panicked"))
    });
    for (f, erased, opened) in parts {
        out.0.extend(f.0);
        checked.facts_erased += erased;
        checked.commitments_checked += opened;
    }
    out.0.extend(others.0);
    (out.0, checked)
}

/// The checks that are not per replayed fact: rows no entry accounts for, votes, agents and
/// history pairs.
fn compare_others(replay: &Replay, stored: &Stored, keeps_index_text: bool) -> Findings {
    let mut out = Findings(Vec::new());
    for (id, have) in stored.facts.iter() {
        if !replay.facts.contains_key(id) {
            out.push(
                ViolationKind::MemoryUnrecorded,
                *id,
                fact_ref("facts", *id, None),
                format!(
                    "fact {id} ({}) is in the facts table, but no fact.store entry stored it",
                    show(&have.content)
                ),
            );
        }
    }
    for id in stored.openings.keys() {
        if !replay.facts.contains_key(id) {
            out.push(
                ViolationKind::MemoryUnrecorded,
                *id,
                fact_ref("fact_openings", *id, None),
                format!("content is stored for fact {id}, but no fact.store entry stored it"),
            );
        }
    }
    if keeps_index_text {
        for id in stored.index_texts.keys() {
            if !replay.facts.contains_key(id) {
                out.push(
                    ViolationKind::MemoryUnrecorded,
                    *id,
                    fact_ref("search_index", *id, None),
                    format!(
                        "the search index holds text for fact {id}, but no fact.store entry \
                         stored it"
                    ),
                );
            }
        }
    }

    // Votes.
    for (key, want) in &replay.votes {
        match stored.votes.get(key) {
            None => out.push(
                ViolationKind::MemoryMissing,
                want.entry_index,
                MemoryRef {
                    table: "fact_votes",
                    fact_id: Some(want.fact_id),
                    agent: Some(want.agent.clone()),
                    column: None,
                },
                format!(
                    "{}'s vote on fact {} is not in fact_votes, but entry {} cast it",
                    show(&want.agent),
                    want.fact_id,
                    want.entry_index
                ),
            ),
            Some(have) => compare_vote(&mut out, want, have),
        }
    }
    for (key, have) in &stored.votes {
        if !replay.votes.contains_key(key) {
            out.push(
                ViolationKind::MemoryUnrecorded,
                have.entry_index,
                MemoryRef {
                    table: "fact_votes",
                    fact_id: Some(have.fact_id),
                    agent: Some(have.agent.clone()),
                    column: None,
                },
                format!(
                    "{}'s vote on fact {} is in fact_votes, but no fact.vote entry cast it",
                    show(&have.agent),
                    have.fact_id
                ),
            );
        }
    }

    // Agents.
    for (name, (want, by)) in &replay.agents {
        match stored.agents.get(name) {
            None => out.push(
                ViolationKind::MemoryMissing,
                *by,
                MemoryRef {
                    table: "agents",
                    fact_id: None,
                    agent: Some(name.clone()),
                    column: None,
                },
                format!(
                    "agent {} is not in the agents table, but entry {by} recorded its vote",
                    show(name)
                ),
            ),
            Some(have) => compare_agent(&mut out, want, *by, have),
        }
    }
    for name in stored.agents.keys() {
        if !replay.agents.contains_key(name) {
            out.push_at(
                ViolationKind::MemoryUnrecorded,
                None,
                MemoryRef {
                    table: "agents",
                    fact_id: None,
                    agent: Some(name.clone()),
                    column: None,
                },
                format!(
                    "agent {} is in the agents table, but no fact.vote entry names it",
                    show(name)
                ),
            );
        }
    }

    // History pairs.
    for &(f, e) in replay.events.difference(&stored.events) {
        out.push(
            ViolationKind::MemoryMissing,
            e,
            fact_ref("fact_events", f, None),
            format!("entry {e} is missing from fact {f}'s history"),
        );
    }
    for &(f, e) in stored.events.difference(&replay.events) {
        out.push(
            ViolationKind::MemoryUnrecorded,
            e,
            fact_ref("fact_events", f, None),
            format!("fact {f}'s history lists entry {e}, which is not one of its entries"),
        );
    }
    out
}

/// What [`rebuild`] did or, on a dry run, would do.
#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    /// True if nothing was written.
    pub dry_run: bool,
    /// The ledger size the memory was replayed from.
    pub tree_size: u64,
    /// Memory entries replayed.
    pub entries_replayed: u64,
    /// Facts written.
    pub facts: u64,
    /// Of those, erased.
    pub facts_erased: u64,
    /// Votes written.
    pub votes: u64,
    /// Agents written.
    pub agents: u64,
    /// Each difference between the stored tables and the replay (what the rebuild changes),
    /// at most [`crate::ledger::verify::MAX_LISTED_VIOLATIONS`].
    pub changes: Vec<Violation>,
    /// Total differences.
    pub change_count: u64,
}

/// Recomputes the memory tables from the ledger and, unless `dry_run`, writes them in one
/// transaction (recorded in `integrity_checks` as `memory_rebuild`). Refuses, writing nothing,
/// if an entry cannot be replayed or a fact's content cannot be restored (its opening is gone
/// without a `fact.erase`, or does not open its commitment): the ledger cannot say what that
/// content was.
pub fn rebuild(store: &dyn Store, hasher: &dyn Hasher, dry_run: bool) -> Result<RebuildReport> {
    let started_at = now_timestamp();
    let stored = Stored::read(store)?;
    let head = stored.head;
    let mut replay = Replay::new();
    store.scan_entries(0..head, &mut |r| {
        replay.apply(r.entry);
        Ok(())
    })?;
    if let Some(u) = replay.unreplayable.first() {
        return Err(Error::integrity(format!(
            "cannot rebuild the memory: entry {} cannot be replayed: {}",
            u.index, u.problem
        )));
    }
    let entries_replayed = replay.entries;
    // The replay defines the state; what differs from the stored rows is what changes.
    let (mut changes, checked) = compare(hasher, &replay, &stored, store.keeps_index_text());
    changes.sort_by_key(|c| c.index.unwrap_or(u64::MAX));
    let (state, lost) = replay.into_state(hasher, &|id| stored.openings.get(&id).cloned());
    if let Some(id) = lost.first() {
        return Err(Error::integrity(format!(
            "cannot rebuild the memory: fact {id}'s content is gone or does not match its \
             commitment in entry {id}, and the ledger holds only the commitment; restore the \
             content from a backup or an export, or erase the fact with `cortex forget {id}`"
        )));
    }
    let report = RebuildReport {
        dry_run,
        tree_size: head,
        entries_replayed,
        facts: state.facts.len() as u64,
        facts_erased: checked.facts_erased,
        votes: state.votes.len() as u64,
        agents: state.agents.len() as u64,
        change_count: changes.len() as u64,
        changes: changes
            .into_iter()
            .take(crate::ledger::verify::MAX_LISTED_VIOLATIONS)
            .collect(),
    };
    if !dry_run {
        store.replace_memory(head, &state).map_err(|e| {
            if e.kind() == ErrorKind::Conflict {
                Error::new(
                    ErrorKind::Conflict,
                    format!("{e}; nothing was changed: run the rebuild again"),
                )
            } else {
                e
            }
        })?;
        store.record_integrity_check(&IntegrityCheck {
            check_type: "memory_rebuild".into(),
            status: "ok".into(),
            details: serde_json::json!({
                "tree_size": report.tree_size,
                "facts": report.facts,
                "votes": report.votes,
                "agents": report.agents,
                "changes": report.change_count,
                "first_changes": report.changes.iter().take(100).collect::<Vec<_>>(),
            })
            .to_string(),
            started_at,
            completed_at: now_timestamp(),
        })?;
    }
    Ok(report)
}

/// The state a replay of `store`'s whole ledger defines (for tests and tools).
pub fn replayed_state(store: &dyn Store, hasher: &dyn Hasher) -> Result<(MemoryState, Vec<u64>)> {
    let head = store.head()?.size;
    let mut replay = Replay::new();
    store.scan_entries(0..head, &mut |r| {
        replay.apply(r.entry);
        Ok(())
    })?;
    Ok(replay.into_state(hasher, &|id| store.opening(id).ok().flatten()))
}

/// The opening an export carries beside `entry` (FORMATS.md §15.3): the stored opening of a
/// `fact.store` entry, if the fact has one (not erased, not in the plain form). Pass it to
/// [`write_export_with`](crate::ledger::export::write_export_with).
pub fn export_opening(
    store: &dyn crate::memory::store::FactStore,
    entry: &crate::ledger::entry::EntryRef<'_>,
) -> Result<Option<crate::ledger::export::ExportOpening>> {
    if entry.action != crate::memory::fact::ACTION_STORE {
        return Ok(None);
    }
    Ok(store
        .opening(entry.index)?
        .map(|o| crate::ledger::export::ExportOpening {
            salt: o.salt,
            content: o.fields.content,
            tags: o.fields.tags,
            source: o.fields.source,
        }))
}
