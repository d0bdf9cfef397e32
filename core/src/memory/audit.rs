//! Verification of the agent memory against the ledger, and its rebuild.
//!
//! The memory tables are a view of the ledger: [`verify`] runs the ledger's own verification,
//! whose parallel scan prepares each memory entry as it reads it ([`Prepared`]) and sends each
//! chunk of them to a second thread. That thread reads every stored memory row in one
//! snapshot ([`scan_memory`](crate::memory::store::FactStore::scan_memory)), digesting fact rows
//! and openings as they stream (each opening's commitment and index text worked out there),
//! then replays the entries in index order as the chunks arrive ([`ChunkedReplay`]). When the
//! scan ends, the replay is compared with the stored rows: each fact's digests, each opening
//! against its commitment, each vote, each agent record, each history pair, and the search
//! index's source text where the store keeps one. A fact row whose digests differ is read
//! again to name the columns that differ. Each difference is a [`Violation`] naming the table,
//! the fact or agent, the column, and the ledger index that defines the true value. Erased
//! facts are counted as erased, never reported as tampered. [`rebuild`] writes the replay in
//! place of the tables.

use crate::error::{Error, ErrorKind, Result};
use crate::ledger::commitment::{commit, decode_salt};
use crate::ledger::entry::EntryRef;
use crate::ledger::entry::now_timestamp;
use crate::ledger::hash::{Hash, Hasher};
use crate::ledger::store::IntegrityCheck;
use crate::ledger::verify::{
    MemoryChecked, MemoryRef, Take, VerifyOptions, VerifyReport, Violation, ViolationKind,
    record_run, verify_ledger,
};
use crate::memory::bm25::index_text;
use crate::memory::commitment::FactOpening;
use crate::memory::consensus::{AgentReputation, Vote};
use crate::memory::fact::Fact;
use crate::memory::replay::{ChunkedReplay, Prepared, Replay, ReplayedFact};
use crate::memory::store::{MemoryRow, MemoryState, Store};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
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
    fn position(&self, id: &u64) -> Option<usize> {
        self.0.binary_search_by_key(id, |(k, _)| *k).ok()
    }
    fn get(&self, id: &u64) -> Option<&V> {
        self.position(id).map(|k| &self.0[k].1)
    }
    fn contains_key(&self, id: &u64) -> bool {
        self.get(id).is_some()
    }
    fn keys(&self) -> impl Iterator<Item = &u64> {
        self.0.iter().map(|(k, _)| k)
    }
}

/// Row values hashed in an injective encoding (each text length-prefixed, each option
/// tagged): two rows digest alike only if every value is alike. The stored rows are digested
/// as they stream and dropped, so a verification holds 64 bytes per fact, not the fact; the
/// replayed rows are digested the same way, and only a row whose digests differ is read
/// again, column by column, to say what differs.
struct Digest<'h> {
    hasher: &'h dyn Hasher,
    buf: Vec<u8>,
}

impl<'h> Digest<'h> {
    fn new(hasher: &'h dyn Hasher) -> Self {
        Digest {
            hasher,
            buf: Vec::with_capacity(512),
        }
    }
    fn num(&mut self, n: u64) -> &mut Self {
        self.buf.extend_from_slice(&n.to_be_bytes());
        self
    }
    fn text(&mut self, t: &str) -> &mut Self {
        self.num(t.len() as u64);
        self.buf.extend_from_slice(t.as_bytes());
        self
    }
    fn opt(&mut self, t: Option<&str>) -> &mut Self {
        match t {
            None => self.buf.push(0),
            Some(t) => {
                self.buf.push(1);
                self.text(t);
            }
        }
        self
    }
    fn finish(&mut self) -> Hash {
        let h = self.hasher.digest_buf(&mut self.buf);
        self.buf.clear();
        h
    }
    /// A fact's erasable fields.
    fn content(&mut self, content: &str, tags: &[String], source: Option<&str>) -> Hash {
        self.text(content).num(tags.len() as u64);
        for t in tags {
            self.text(t);
        }
        self.opt(source).finish()
    }
    /// Every other column of a fact.
    fn fixed(&mut self, f: &Fact) -> Hash {
        self.num(f.id)
            .text(&f.project)
            .text(&f.fact_type)
            .num(f.confidence.to_bits())
            .text(&f.valid_from)
            .opt(f.valid_until.as_deref())
            .text(&f.created_at)
            .opt(f.deprecated_at.as_deref())
            .opt(f.deprecation_reason.as_deref())
            .num(f.consensus.to_bits())
            .opt(f.author.as_deref())
            .opt(f.surface.as_deref())
            .opt(f.erased_at.as_deref())
            .finish()
    }
}

/// A stored fact row, digested: its erasable fields ([`Digest::content`]) and the rest
/// ([`Digest::fixed`]).
#[derive(Debug, Clone, Copy)]
struct SeenFact {
    fixed: Hash,
    content: Hash,
}

/// A stored opening, digested: the commitment it makes (`None` if its salt is not 64 hex
/// digits), its fields ([`Digest::content`]), and the index text they make, hashed.
#[derive(Debug, Clone, Copy)]
struct SeenOpening {
    commitment: Option<Hash>,
    content: Hash,
    index_text: Hash,
}

/// The stored memory, read in one snapshot.
#[derive(Debug, Default)]
struct Stored {
    head: u64,
    facts: ById<SeenFact>,
    openings: ById<SeenOpening>,
    /// The openings themselves, kept only for a rebuild (which writes them back).
    kept_openings: ById<FactOpening>,
    votes: BTreeMap<(u64, String), Vote>,
    agents: BTreeMap<String, AgentReputation>,
    events: BTreeSet<(u64, u64)>,
    index_texts: ById<String>,
    undecodable: Vec<(&'static str, String, String)>,
}

impl Stored {
    /// Reads the stored memory in one snapshot, digesting facts and openings as they come
    /// (and keeping the openings too if `keep_openings`).
    fn read(store: &dyn Store, hasher: &dyn Hasher, keep_openings: bool) -> Result<Stored> {
        let mut s = Stored::default();
        let mut d = Digest::new(hasher);
        store.scan_memory(&mut |row| {
            match row {
                MemoryRow::Head(h) => s.head = h,
                MemoryRow::Fact(f) => {
                    let content = d.content(&f.content, &f.tags, f.source.as_deref());
                    let fixed = d.fixed(&f);
                    s.facts.insert(f.id, SeenFact { fixed, content });
                }
                MemoryRow::Opening(o) => {
                    let f = &o.fields;
                    let seen = SeenOpening {
                        commitment: decode_salt(&o.salt).ok().map(|salt| {
                            commit(hasher, &salt, &f.content, &f.tags, f.source.as_deref())
                        }),
                        content: d.content(&f.content, &f.tags, f.source.as_deref()),
                        index_text: d.text(&index_text(&f.content, &f.tags)).finish(),
                    };
                    s.openings.insert(o.fact_id, seen);
                    if keep_openings {
                        s.kept_openings.insert(o.fact_id, o);
                    }
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

/// Prepares the memory entries as the ledger scan reads them ([`Prepared::of`], in the scan's
/// workers) and sends each chunk of them to the replay.
struct ToReplay(mpsc::Sender<(u64, Vec<Prepared>)>);

impl Take for ToReplay {
    type Item = Prepared;
    fn take(&self, row: EntryRef<'_>) -> Option<Prepared> {
        Prepared::of(row)
    }
    fn chunk(&self, chunk: u64, items: Vec<Prepared>) {
        // The receiver is gone only if reading the memory failed, which is reported.
        let _ = self.0.send((chunk, items));
    }
}

/// The memory side of a verification, run beside the ledger scan: reads the stored memory
/// (one snapshot), digesting facts and openings as they stream, then replays the memory entries
/// below the snapshot's head as the scan sends them, chunk by chunk in index order. Returns
/// the rows, the replay, and the index after the last memory entry the scan sent.
fn replay_beside_scan(
    store: &dyn Store,
    hasher: &dyn Hasher,
    chunks: mpsc::Receiver<(u64, Vec<Prepared>)>,
) -> Result<(Stored, Replay, u64)> {
    let stored = Stored::read(store, hasher, false)?;
    let mut replay = ChunkedReplay::new(stored.head);
    // Ends when the scan is over and its sender dropped.
    for (chunk, items) in chunks {
        replay.receive(chunk, items);
    }
    let (replay, seen) = replay.finish();
    Ok((stored, replay, seen))
}

fn verify_inner(
    store: &dyn Store,
    hasher: &dyn Hasher,
    origin: Option<&str>,
    options: &VerifyOptions,
    started: Instant,
) -> Result<VerifyReport> {
    // The memory is read and replayed beside the ledger scan, which hands back the memory
    // entries as it reads them: the ledger is read once.
    let (tx, rx) = mpsc::channel();
    let (ledger, memory) = std::thread::scope(|s| {
        let memory = s.spawn(|| replay_beside_scan(store, hasher, rx));
        let take = ToReplay(tx);
        let ledger = verify_ledger(store, hasher, origin, options, &take);
        drop(take);
        (ledger, memory.join())
    });
    let mut report = ledger?;
    let (stored, mut replay, seen) =
        memory.map_err(|_| Error::backend("memory scan panicked"))??;
    // Replay exactly the entries of the memory's snapshot: those below its head, which may
    // lie beyond what the scan read if appends went on meanwhile.
    let scanned = report.tree_size.max(seen);
    if stored.head > scanned {
        store.scan_entries(scanned..stored.head, &mut |r| {
            replay.apply(r.entry);
            Ok(())
        })?;
    }
    let (found, checked) = compare(store, hasher, &replay, &stored);
    // Freeing a few hundred thousand rows takes a while: not on the caller's time.
    std::thread::spawn(move || drop((replay, stored)));
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

/// What the ledger vouches for as a fact's erasable fields: their values (a plain detail's,
/// or empty once erased), a stored opening that opens the fact's commitment, or nothing known
/// (no opening, or one that does not open).
#[derive(Clone, Copy)]
enum Vouched<'a> {
    Values(&'a str, &'a [String], Option<&'a str>),
    Opening(&'a SeenOpening),
    Unknown,
}

/// What the checks of one fact need: the store (to read a row again), the stored rows, and a
/// digest buffer.
struct FactCheck<'a> {
    store: &'a dyn Store,
    stored: &'a Stored,
    digest: Digest<'a>,
    keeps_index_text: bool,
}

impl FactCheck<'_> {
    /// Checks one replayed fact against its stored row, opening and index text. Returns
    /// whether it is erased and whether an opening was checked against its commitment.
    fn check(&mut self, out: &mut Findings, id: u64, want: &ReplayedFact) -> (bool, bool) {
        let stored = self.stored;
        let erased = want.erased_by.is_some();
        let mut opened = false;
        let w = &want.fact;
        let mut vouched = Vouched::Unknown;
        if let Some(by) = want.erased_by {
            vouched = Vouched::Values("", &[], None);
            if stored.openings.contains_key(&id) {
                out.push(
                    ViolationKind::MemoryUnrecorded,
                    by,
                    fact_ref("fact_openings", id, Some("content")),
                    format!(
                        "fact {id} was erased by entry {by}, but its content and salt are stored \
                         again"
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
                        "fact {id}'s content and salt are gone, but no fact.erase entry erased \
                         it (its commitment is in entry {id})"
                    ),
                ),
                Some(o) => {
                    opened = true;
                    if o.commitment
                        .is_some_and(|m| Hash::from_hex(c).is_ok_and(|c| c == m))
                    {
                        vouched = Vouched::Opening(o);
                    } else {
                        out.push(
                            ViolationKind::CommitmentMismatch,
                            id,
                            fact_ref("fact_openings", id, None),
                            format!(
                                "fact {id}'s stored content and salt do not open the commitment \
                                 {c} in entry {id}: the content was altered"
                            ),
                        );
                    }
                }
            }
        } else {
            vouched = Vouched::Values(&w.content, &w.tags, w.source.as_deref());
        }
        match stored.facts.get(&id) {
            None => out.push(
                ViolationKind::MemoryMissing,
                id,
                fact_ref("facts", id, None),
                format!("fact {id} is not in the facts table, but entry {id} stored it"),
            ),
            Some(have) => {
                let content = match vouched {
                    Vouched::Values(c, t, s) => Some(self.digest.content(c, t, s)),
                    Vouched::Opening(o) => Some(o.content),
                    Vouched::Unknown => None,
                };
                if self.digest.fixed(w) != have.fixed || content.is_some_and(|c| c != have.content)
                {
                    self.explain_fact(out, want, vouched);
                }
            }
        }
        if self.keeps_index_text {
            self.check_index_text(out, id, want, vouched);
        }
        (erased, opened)
    }

    /// Says which columns of a fact row differ from the replay, reading the row (and its
    /// opening) again: only rows whose digests differ get here.
    fn explain_fact(&self, out: &mut Findings, want: &ReplayedFact, vouched: Vouched<'_>) {
        let id = want.fact.id;
        let before = out.0.len();
        let opening = match vouched {
            Vouched::Opening(_) => self.store.opening(id).ok().flatten(),
            _ => None,
        };
        let content = match vouched {
            Vouched::Values(c, t, s) => Some((c, t, s)),
            Vouched::Opening(_) => opening.as_ref().map(|o| {
                let f = &o.fields;
                (f.content.as_str(), f.tags.as_slice(), f.source.as_deref())
            }),
            Vouched::Unknown => None,
        };
        let why = match self.store.fact(id) {
            Ok(Some(have)) => {
                compare_fact(out, want, &have, content);
                "it changed again while verify ran".to_owned()
            }
            Ok(None) => "it was deleted while verify ran".to_owned(),
            Err(e) => format!("reading it again to name the column failed: {e}"),
        };
        if out.0.len() == before {
            out.push(
                ViolationKind::MemoryMismatch,
                id,
                fact_ref("facts", id, None),
                format!(
                    "fact {id}'s row in the facts table differs from what the ledger (entry \
                     {id}) says; {why}"
                ),
            );
        }
    }

    fn check_index_text(
        &mut self,
        out: &mut Findings,
        id: u64,
        want: &ReplayedFact,
        vouched: Vouched<'_>,
    ) {
        let indexed = self.stored.index_texts.get(&id);
        if let Some(by) = want.erased_by {
            if indexed.is_some() {
                out.push(
                    ViolationKind::MemoryUnrecorded,
                    by,
                    fact_ref("search_index", id, None),
                    format!(
                        "fact {id} was erased by entry {by}, but the search index still holds \
                         text for it"
                    ),
                );
            }
            return;
        }
        let expected = match vouched {
            Vouched::Values(c, t, _) => self.digest.text(&index_text(c, t)).finish(),
            Vouched::Opening(o) => o.index_text,
            Vouched::Unknown => return,
        };
        match indexed {
            None => out.push(
                ViolationKind::MemoryMissing,
                id,
                fact_ref("search_index", id, None),
                format!("fact {id} is missing from the search index"),
            ),
            Some(t) if self.digest.text(t).finish() != expected => {
                let text = match vouched {
                    Vouched::Values(c, t, _) => Some(index_text(c, t)),
                    _ => self
                        .store
                        .opening(id)
                        .ok()
                        .flatten()
                        .map(|o| index_text(&o.fields.content, &o.fields.tags)),
                };
                out.push(
                    ViolationKind::MemoryMismatch,
                    id,
                    fact_ref("search_index", id, Some("text")),
                    format!(
                        "the search index holds {} for fact {id}, but its content (entry {id}) \
                         indexes as {}",
                        show(t),
                        text.as_ref().map_or_else(|| "something else".into(), show)
                    ),
                );
            }
            Some(_) => {}
        }
    }
}

/// Compares the replay with the stored rows (read from `store`; a row that differs is read
/// again to say how).
fn compare(
    store: &dyn Store,
    hasher: &dyn Hasher,
    replay: &Replay,
    stored: &Stored,
) -> (Vec<Violation>, MemoryChecked) {
    let keeps_index_text = store.keeps_index_text();
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
    // chunks (digesting the replayed rows is most of the work), while another thread looks
    // for rows no entry accounts for and checks votes, agents and history.
    let facts: Vec<(&u64, &ReplayedFact)> = replay.facts.iter().collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(facts.len().div_ceil(4096).max(1));
    let per = facts.len().div_ceil(threads).max(1);
    let (parts, others): (Vec<(Findings, u64, u64)>, Findings) = std::thread::scope(|sc| {
        let others = sc.spawn(|| compare_others(store, replay, stored, keeps_index_text));
        let workers: Vec<_> = facts
            .chunks(per)
            .map(|chunk| {
                sc.spawn(move || {
                    let mut f = Findings(Vec::new());
                    let mut check = FactCheck {
                        store,
                        stored,
                        digest: Digest::new(hasher),
                        keeps_index_text,
                    };
                    let (mut erased, mut opened) = (0, 0);
                    for (id, want) in chunk {
                        let (e, o) = check.check(&mut f, **id, want);
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
fn compare_others(
    store: &dyn Store,
    replay: &Replay,
    stored: &Stored,
    keeps_index_text: bool,
) -> Findings {
    let mut out = Findings(Vec::new());
    for id in stored.facts.keys() {
        if !replay.facts.contains_key(id) {
            // Read again for the message: only rows no entry stored get here.
            let content = store.fact(*id).ok().flatten().map(|f| f.content);
            out.push(
                ViolationKind::MemoryUnrecorded,
                *id,
                fact_ref("facts", *id, None),
                format!(
                    "fact {id} ({}) is in the facts table, but no fact.store entry stored it",
                    content.as_ref().map_or_else(|| "now gone".into(), show)
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
    let stored = Stored::read(store, hasher, true)?;
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
    let (mut changes, checked) = compare(store, hasher, &replay, &stored);
    changes.sort_by_key(|c| c.index.unwrap_or(u64::MAX));
    let (state, lost) = replay.into_state(hasher, &|id| stored.kept_openings.get(&id).cloned());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::hash::Sha256Hasher;

    fn fact() -> Fact {
        Fact {
            id: 7,
            project: "ab".into(),
            content: "c".into(),
            fact_type: "c".into(),
            tags: vec![],
            confidence: 0.5,
            source: None,
            valid_from: "2026-12-06T10:00:00.000000Z".into(),
            valid_until: None,
            created_at: "2026-12-06T10:00:00.000000Z".into(),
            deprecated_at: None,
            deprecation_reason: None,
            consensus: 0.0,
            author: None,
            surface: Some("cli".into()),
            erased_at: None,
        }
    }

    #[test]
    fn row_digests_tell_apart_values_that_concatenate_alike() {
        let mut d = Digest::new(&Sha256Hasher);
        let base = d.fixed(&fact());
        assert_eq!(d.fixed(&fact()), base, "the buffer starts over each time");
        let variants: [fn(&mut Fact); 7] = [
            |f| (f.project, f.fact_type) = ("a".into(), "bc".into()),
            |f| f.author = Some(String::new()),
            |f| (f.author, f.surface) = (Some("cli".into()), None),
            |f| f.confidence = 0.5000000000000001,
            |f| f.consensus = -0.0,
            |f| f.id = 8,
            |f| f.erased_at = Some("2026-12-06T10:00:00.000000Z".into()),
        ];
        for (k, change) in variants.iter().enumerate() {
            let mut f = fact();
            change(&mut f);
            assert_ne!(d.fixed(&f), base, "variant {k}");
        }
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let c = d.content("x", &tags(&["ab"]), None);
        assert_ne!(d.content("x", &tags(&["a", "b"]), None), c);
        assert_ne!(d.content("xab", &[], None), c);
        assert_ne!(d.content("x", &tags(&["ab"]), Some("")), c);
        assert_eq!(d.content("x", &tags(&["ab"]), None), c);
    }
}
