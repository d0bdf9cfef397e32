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

/// A memory entry's detail, parsed (independently of every other entry).
enum Parsed {
    Store(StoreRecord),
    Vote(VoteDetail),
    Deprecate(DeprecateDetail),
    Erase(EraseDetail),
    /// The detail does not parse as its action's.
    Bad(String),
}

impl Parsed {
    /// The parsed detail of a memory entry; `None` for any other entry.
    fn of(e: &EntryRef<'_>) -> Option<Parsed> {
        fn parse<T: serde::de::DeserializeOwned>(
            detail: &str,
            what: &str,
            wrap: fn(T) -> Parsed,
        ) -> Parsed {
            serde_json::from_str(detail)
                .map_or_else(|x| Parsed::Bad(format!("not a {what} detail: {x}")), wrap)
        }
        Some(match e.action {
            ACTION_STORE => match StoreRecord::parse(e.detail) {
                Ok(d) => Parsed::Store(d),
                Err(x) => Parsed::Bad(x.to_string()),
            },
            ACTION_VOTE => parse(e.detail, "fact.vote", Parsed::Vote),
            ACTION_DEPRECATE => parse(e.detail, "fact.deprecate", Parsed::Deprecate),
            ACTION_ERASE => parse(e.detail, "fact.erase", Parsed::Erase),
            _ => return None,
        })
    }
}

/// The replay's state.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// Facts by id.
    pub facts: BTreeMap<u64, ReplayedFact>,
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
        if let Some(p) = Parsed::of(&e) {
            self.apply_parsed(e, p);
        }
    }

    /// Applies `entries` (in index order): their details are parsed in parallel chunks, then
    /// applied in order (votes depend on what came before).
    pub fn apply_all(&mut self, entries: &[crate::ledger::entry::Entry]) {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(entries.len().div_ceil(8192).max(1));
        let per = entries.len().div_ceil(threads).max(1);
        let parsed: Vec<Vec<Option<Parsed>>> = std::thread::scope(|sc| {
            let workers: Vec<_> = entries
                .chunks(per)
                .map(|chunk| {
                    sc.spawn(move || chunk.iter().map(|e| Parsed::of(&e.as_ref())).collect())
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("replay parser panicked"))
                .collect()
        });
        for (e, p) in entries.iter().zip(parsed.into_iter().flatten()) {
            if let Some(p) = p {
                self.apply_parsed(e.as_ref(), p);
            }
        }
    }

    fn apply_parsed(&mut self, e: EntryRef<'_>, p: Parsed) {
        let r = match p {
            Parsed::Store(d) => self.store(e, d),
            Parsed::Vote(d) => self.vote(e, d),
            Parsed::Deprecate(d) => self.deprecate(e, d),
            Parsed::Erase(d) => self.erase(e, d),
            Parsed::Bad(problem) => Err(problem),
        };
        self.entries += 1;
        if let Err(problem) = r {
            self.unreplayable.push(Unreplayable {
                index: e.index,
                problem,
            });
        }
    }

    fn store(&mut self, e: EntryRef<'_>, d: StoreRecord) -> Result<(), String> {
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
        self.events.insert((e.index, e.index));
        self.facts.insert(
            e.index,
            ReplayedFact {
                fact,
                commitment,
                consensus_by: e.index,
                deprecated_by: None,
                erased_by: None,
            },
        );
        Ok(())
    }

    /// The fact an entry is about, if it may still change (exists, not deprecated, not erased).
    fn open_fact(&mut self, e: EntryRef<'_>, id: u64, what: &str) -> Result<(), String> {
        let f = self
            .facts
            .get(&id)
            .ok_or_else(|| format!("{} of fact {id}, which no earlier entry stored", what))?;
        if let Some(d) = f.deprecated_by {
            return Err(format!(
                "{what} of fact {id}, which entry {d} deprecated (entry {})",
                e.index
            ));
        }
        if let Some(x) = f.erased_by {
            return Err(format!("{what} of fact {id}, which entry {x} erased"));
        }
        Ok(())
    }

    fn vote(&mut self, e: EntryRef<'_>, d: VoteDetail) -> Result<(), String> {
        self.open_fact(e, d.fact_id, "a vote")?;
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
                entry_index: e.index,
                voted_at: e.timestamp.to_owned(),
            },
        );
        let f = self.facts.get_mut(&d.fact_id).expect("checked above");
        f.fact.consensus = effect.consensus;
        f.consensus_by = e.index;
        self.agents.insert(d.agent.clone(), (effect.agent, e.index));
        self.votes.insert((d.fact_id, d.agent), effect.vote);
        self.events.insert((d.fact_id, e.index));
        Ok(())
    }

    fn deprecate(&mut self, e: EntryRef<'_>, d: DeprecateDetail) -> Result<(), String> {
        self.open_fact(e, d.fact_id, "a deprecation")?;
        let f = self.facts.get_mut(&d.fact_id).expect("checked above");
        f.fact.deprecated_at = Some(e.timestamp.to_owned());
        f.fact.deprecation_reason = d.reason;
        f.deprecated_by = Some(e.index);
        self.events.insert((d.fact_id, e.index));
        Ok(())
    }

    fn erase(&mut self, e: EntryRef<'_>, d: EraseDetail) -> Result<(), String> {
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
        f.fact.erased_at = Some(e.timestamp.to_owned());
        f.erased_by = Some(e.index);
        self.events.insert((d.fact_id, e.index));
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
        for (id, mut f) in self.facts {
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
