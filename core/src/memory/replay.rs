//! The agent memory as the ledger defines it: a replay of the memory entries (`fact.store`,
//! `fact.vote`, `fact.deprecate`, `fact.erase`) in index order, with the same rules the live
//! writes follow ([`crate::memory::consensus::cast`] for votes). `verify` compares the replay
//! with the stored tables ([`crate::memory::audit`]); `cortex memory rebuild` writes it.
//!
//! A sealed fact's content is not in the ledger: the replay keeps its commitment, and the
//! content comes from the stored opening once that opening is shown to open the commitment
//! ([`Replay::into_state`]).

use crate::ledger::entry::EntryRef;
use crate::ledger::hash::Hasher;
use crate::memory::commitment::{FactContent, FactOpening};
use crate::memory::consensus::{AgentReputation, Vote, cast};
use crate::memory::fact::{
    ACTION_DEPRECATE, ACTION_ERASE, ACTION_STORE, ACTION_VOTE, DeprecateDetail, EraseDetail, Fact,
    StoreRecord, VoteDetail,
};
use crate::memory::store::MemoryState;
use std::collections::{BTreeMap, BTreeSet};

/// A fact as replayed, with the ledger indices that define each part of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayedFact {
    /// The fact; for a sealed fact the content, tags and source are empty until
    /// [`Replay::into_state`] fills them from a verified opening.
    pub fact: Fact,
    /// The commitment (hex) of a sealed fact; `None` for a plain (pre-erasure) fact.
    pub commitment: Option<String>,
    /// The entry that last set the consensus (the fact's own id if no vote).
    pub consensus_by: u64,
    /// The `fact.deprecate` entry, if any.
    pub deprecated_by: Option<u64>,
    /// The `fact.erase` entry, if any.
    pub erased_by: Option<u64>,
}

/// An entry the replay could not apply: the live code never writes such an entry, so it was
/// appended around the memory (or altered, which the ledger check also reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreplayable {
    /// The entry.
    pub index: u64,
    /// Why.
    pub problem: String,
}

/// A memory entry made ready to apply: its detail parsed and, for a `fact.store`, the fact
/// built. Each entry is prepared on its own, so entries can be prepared in parallel (`verify`
/// prepares them in the ledger scan's workers) and then applied in index order
/// ([`Replay::apply_prepared`]).
#[derive(Debug)]
pub struct Prepared {
    index: u64,
    op: Op,
}

#[derive(Debug)]
enum Op {
    Store(Box<ReplayedFact>),
    Vote(VoteDetail, String),
    Deprecate(DeprecateDetail, String),
    Erase(EraseDetail, String),
    /// The detail does not parse as its action's.
    Bad(String),
}

impl Prepared {
    /// The prepared form of a memory entry; `None` for any other entry.
    pub fn of(e: EntryRef<'_>) -> Option<Prepared> {
        fn parse<T: serde::de::DeserializeOwned>(
            e: &EntryRef<'_>,
            what: &str,
            wrap: fn(T, String) -> Op,
        ) -> Op {
            serde_json::from_str(e.detail).map_or_else(
                |x| Op::Bad(format!("not a {what} detail: {x}")),
                |d| wrap(d, e.timestamp.to_owned()),
            )
        }
        let op = match e.action {
            ACTION_STORE => match StoreRecord::parse(e.detail) {
                Ok(d) => Op::Store(Box::new(stored_fact(&e, d))),
                Err(x) => Op::Bad(x.to_string()),
            },
            ACTION_VOTE => parse(&e, "fact.vote", Op::Vote),
            ACTION_DEPRECATE => parse(&e, "fact.deprecate", Op::Deprecate),
            ACTION_ERASE => parse(&e, "fact.erase", Op::Erase),
            _ => return None,
        };
        Some(Prepared { index: e.index, op })
    }

    /// The ledger index of the entry.
    pub fn index(&self) -> u64 {
        self.index
    }
}

/// A replay fed chunks of prepared entries in any order, as parallel scan workers finish them
/// (chunks numbered from 0 in index order, entries in index order within each): a chunk is
/// applied once every chunk before it has been, so the entries apply in index order. Entries
/// at or past `end` (the head of the memory snapshot being checked) are not applied.
#[derive(Debug)]
pub struct ChunkedReplay {
    replay: Replay,
    waiting: BTreeMap<u64, Vec<Prepared>>,
    next: u64,
    seen: u64,
    end: u64,
}

impl ChunkedReplay {
    /// An empty replay of the entries below `end`.
    pub fn new(end: u64) -> Self {
        ChunkedReplay {
            replay: Replay::new(),
            waiting: BTreeMap::new(),
            next: 0,
            seen: 0,
            end,
        }
    }

    /// Takes chunk `chunk`, applying it and every waiting chunk after it if its turn has come.
    pub fn receive(&mut self, chunk: u64, items: Vec<Prepared>) {
        self.waiting.insert(chunk, items);
        while let Some(items) = self.waiting.remove(&self.next) {
            for p in items {
                self.seen = p.index + 1;
                if p.index < self.end {
                    self.replay.apply_prepared(p);
                }
            }
            self.next += 1;
        }
    }

    /// The replay, and the index after the last entry applied or skipped (0 if none): the
    /// chunks received after a missing one are not applied.
    pub fn finish(self) -> (Replay, u64) {
        (self.replay, self.seen)
    }
}

/// The fact a `fact.store` entry creates, as it stands before any later entry.
fn stored_fact(e: &EntryRef<'_>, d: StoreRecord) -> ReplayedFact {
    let (fact, commitment) = match d {
        StoreRecord::Plain(d) => (d.into_fact(e.index, e.project, e.timestamp), None),
        StoreRecord::Sealed(d) => {
            let c = d.commitment.clone();
            (
                d.into_fact(e.index, e.project, e.timestamp, FactContent::default()),
                Some(c),
            )
        }
    };
    ReplayedFact {
        fact,
        commitment,
        consensus_by: e.index,
        deprecated_by: None,
        erased_by: None,
    }
}

/// The replayed facts by id, in id order. A replay meets facts in increasing id order (a
/// fact's id is the index of its `fact.store` entry), so they are kept in a vector, appended
/// to and found by binary search, each boxed as it was prepared: cheaper than a tree for a
/// few hundred thousand facts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplayedFacts(Vec<(u64, Box<ReplayedFact>)>);

impl ReplayedFacts {
    /// How many facts.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn position(&self, id: u64) -> std::result::Result<usize, usize> {
        match self.0.last() {
            Some((last, _)) if *last < id => Err(self.0.len()),
            _ => self.0.binary_search_by_key(&id, |(k, _)| *k),
        }
    }
    /// The fact `id`.
    pub fn get(&self, id: &u64) -> Option<&ReplayedFact> {
        self.position(*id).ok().map(|k| &*self.0[k].1)
    }
    /// The fact `id`, to change.
    pub fn get_mut(&mut self, id: &u64) -> Option<&mut ReplayedFact> {
        self.position(*id).ok().map(|k| &mut *self.0[k].1)
    }
    /// True if there is a fact `id`.
    pub fn contains_key(&self, id: &u64) -> bool {
        self.position(*id).is_ok()
    }
    /// The facts in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&u64, &ReplayedFact)> {
        self.0.iter().map(|(k, f)| (k, &**f))
    }
    /// Sets fact `id` (in id order this is a push).
    fn insert(&mut self, id: u64, f: Box<ReplayedFact>) {
        match self.position(id) {
            Ok(k) => self.0[k].1 = f,
            Err(k) => self.0.insert(k, (id, f)),
        }
    }
}

impl std::ops::Index<&u64> for ReplayedFacts {
    type Output = ReplayedFact;
    fn index(&self, id: &u64) -> &ReplayedFact {
        self.get(id).expect("no replayed fact with that id")
    }
}

/// The replay's state.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// Facts by id.
    pub facts: ReplayedFacts,
    /// Current votes by (fact, agent).
    pub votes: BTreeMap<(u64, String), Vote>,
    /// Agents, with the entry that last changed each.
    pub agents: BTreeMap<String, (AgentReputation, u64)>,
    /// (fact, entry) history pairs.
    pub events: BTreeSet<(u64, u64)>,
    /// Entries that could not be applied.
    pub unreplayable: Vec<Unreplayable>,
    /// Memory entries applied.
    pub entries: u64,
}

impl Replay {
    /// An empty replay.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one ledger entry (entries must come in index order; non-memory entries are
    /// ignored).
    pub fn apply(&mut self, e: EntryRef<'_>) {
        if let Some(p) = Prepared::of(e) {
            self.apply_prepared(p);
        }
    }

    /// Applies a prepared entry (in index order, like [`Replay::apply`]).
    pub fn apply_prepared(&mut self, p: Prepared) {
        let index = p.index;
        let r = match p.op {
            Op::Store(f) => {
                self.events.insert((index, index));
                self.facts.insert(index, f);
                Ok(())
            }
            Op::Vote(d, at) => self.vote(index, at, d),
            Op::Deprecate(d, at) => self.deprecate(index, at, d),
            Op::Erase(d, at) => self.erase(index, at, d),
            Op::Bad(problem) => Err(problem),
        };
        self.entries += 1;
        if let Err(problem) = r {
            self.unreplayable.push(Unreplayable { index, problem });
        }
    }

    /// The fact an entry is about, if it may still change (exists, not deprecated, not erased).
    fn open_fact(&mut self, index: u64, id: u64, what: &str) -> Result<(), String> {
        let f = self
            .facts
            .get(&id)
            .ok_or_else(|| format!("{} of fact {id}, which no earlier entry stored", what))?;
        if let Some(d) = f.deprecated_by {
            return Err(format!(
                "{what} of fact {id}, which entry {d} deprecated (entry {index})"
            ));
        }
        if let Some(x) = f.erased_by {
            return Err(format!("{what} of fact {id}, which entry {x} erased"));
        }
        Ok(())
    }

    fn vote(&mut self, index: u64, at: String, d: VoteDetail) -> Result<(), String> {
        self.open_fact(index, d.fact_id, "a vote")?;
        let current: Vec<Vote> = self
            .votes
            .range((d.fact_id, String::new())..)
            .take_while(|((f, _), _)| *f == d.fact_id)
            .map(|(_, v)| v.clone())
            .collect();
        let record = self.agents.get(&d.agent).map(|a| a.0.clone());
        let effect = cast(
            &current,
            record,
            Vote {
                fact_id: d.fact_id,
                agent: d.agent.clone(),
                vote: d.vote,
                reason: d.reason,
                weight: 0.0,
                agreed: None,
                entry_index: index,
                voted_at: at,
            },
        );
        let f = self.facts.get_mut(&d.fact_id).expect("checked above");
        f.fact.consensus = effect.consensus;
        f.consensus_by = index;
        self.agents.insert(d.agent.clone(), (effect.agent, index));
        self.votes.insert((d.fact_id, d.agent), effect.vote);
        self.events.insert((d.fact_id, index));
        Ok(())
    }

    fn deprecate(&mut self, index: u64, at: String, d: DeprecateDetail) -> Result<(), String> {
        self.open_fact(index, d.fact_id, "a deprecation")?;
        let f = self.facts.get_mut(&d.fact_id).expect("checked above");
        f.fact.deprecated_at = Some(at);
        f.fact.deprecation_reason = d.reason;
        f.deprecated_by = Some(index);
        self.events.insert((d.fact_id, index));
        Ok(())
    }

    fn erase(&mut self, index: u64, at: String, d: EraseDetail) -> Result<(), String> {
        let f = self.facts.get_mut(&d.fact_id).ok_or_else(|| {
            format!(
                "an erasure of fact {}, which no earlier entry stored",
                d.fact_id
            )
        })?;
        if let Some(x) = f.erased_by {
            return Err(format!(
                "an erasure of fact {}, which entry {x} already erased",
                d.fact_id
            ));
        }
        if f.commitment.is_none() {
            return Err(format!(
                "an erasure of fact {}, whose content is in its own entry (stored before \
                 erasure existed) and cannot be erased",
                d.fact_id
            ));
        }
        f.fact.erased_at = Some(at);
        f.erased_by = Some(index);
        self.events.insert((d.fact_id, index));
        Ok(())
    }

    /// The memory state this replay defines, taking each sealed fact's content from the
    /// opening `openings` returns for it if that opening opens the fact's commitment under
    /// `hasher`. Returns the state and the facts whose content could not be restored (no
    /// opening, or one that does not open the commitment), which are left empty.
    pub fn into_state(
        self,
        hasher: &dyn Hasher,
        openings: &dyn Fn(u64) -> Option<FactOpening>,
    ) -> (MemoryState, Vec<u64>) {
        let mut state = MemoryState::default();
        let mut lost = Vec::new();
        for (id, f) in self.facts.0 {
            let mut f = *f;
            if let Some(c) = &f.commitment
                && f.erased_by.is_none()
            {
                match openings(id) {
                    Some(o) if o.fact_id == id && o.opens(hasher, c) => {
                        f.fact.content = o.fields.content.clone();
                        f.fact.tags = o.fields.tags.clone();
                        f.fact.source = o.fields.source.clone();
                        state.openings.push(o);
                    }
                    _ => lost.push(id),
                }
            }
            state.facts.push(f.fact);
        }
        state.votes = self.votes.into_values().collect();
        state.agents = self.agents.into_values().map(|a| a.0).collect();
        state.events = self.events.into_iter().collect();
        (state, lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::entry::Entry;

    fn entry(index: u64, action: &str, detail: &str) -> Entry {
        Entry {
            index,
            timestamp: format!("2026-12-06T10:00:{index:02}.000000Z"),
            project: "p".into(),
            action: action.into(),
            detail: detail.into(),
        }
    }

    /// A fact stored in chunk 0, voted on in chunk 1 and deprecated in chunk 2.
    fn chunks() -> Vec<Vec<Prepared>> {
        let store = r#"{"content":"c","fact_type":"knowledge","tags":[],"confidence":0.9,"valid_from":"2026-12-06T10:00:00.000000Z"}"#;
        let vote = r#"{"fact_id":0,"agent":"a","vote":1,"reason":null}"#;
        let deprecate = r#"{"fact_id":0,"reason":"old"}"#;
        [
            vec![entry(0, ACTION_STORE, store), entry(1, "audit.event", "{}")],
            vec![entry(2, ACTION_VOTE, vote)],
            vec![],
            vec![entry(4, ACTION_DEPRECATE, deprecate)],
        ]
        .iter()
        .map(|c| c.iter().filter_map(|e| Prepared::of(e.as_ref())).collect())
        .collect()
    }

    fn in_order() -> Replay {
        let mut r = Replay::new();
        for p in chunks().into_iter().flatten() {
            r.apply_prepared(p);
        }
        r
    }

    #[test]
    fn chunks_apply_in_index_order_whatever_order_they_come_in() {
        let want = in_order();
        assert!(want.unreplayable.is_empty(), "{:?}", want.unreplayable);
        assert_eq!(want.facts[&0].deprecated_by, Some(4));
        assert_eq!(want.facts[&0].consensus_by, 2);
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]] {
            let mut chunks: Vec<Option<Vec<Prepared>>> = chunks().into_iter().map(Some).collect();
            let mut r = ChunkedReplay::new(u64::MAX);
            for c in order {
                r.receive(c, chunks[c as usize].take().unwrap());
            }
            let (got, seen) = r.finish();
            assert_eq!(seen, 5, "{order:?}");
            assert_eq!(got.facts, want.facts, "{order:?}");
            assert_eq!(got.votes, want.votes, "{order:?}");
            assert_eq!(got.events, want.events, "{order:?}");
            assert!(
                got.unreplayable.is_empty(),
                "{order:?}: {:?}",
                got.unreplayable
            );
            assert_eq!(got.entries, 3);
        }
    }

    #[test]
    fn entries_past_the_end_are_seen_but_not_applied() {
        let mut r = ChunkedReplay::new(3);
        for (c, items) in chunks().into_iter().enumerate().rev() {
            r.receive(c as u64, items);
        }
        let (got, seen) = r.finish();
        assert_eq!(seen, 5);
        assert_eq!(
            got.entries, 2,
            "the store and the vote, not the deprecation"
        );
        assert_eq!(got.facts[&0].deprecated_by, None);
        // A missing chunk holds back every chunk after it.
        let mut r = ChunkedReplay::new(u64::MAX);
        let mut all = chunks();
        r.receive(0, std::mem::take(&mut all[0]));
        r.receive(2, std::mem::take(&mut all[2]));
        r.receive(3, std::mem::take(&mut all[3]));
        let (got, seen) = r.finish();
        assert_eq!((got.entries, seen), (1, 1));
    }
}
