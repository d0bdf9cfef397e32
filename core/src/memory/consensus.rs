//! Votes, agent reputations and the reputation-weighted consensus: the records and the
//! formulas, pure and backend-independent.
//!
//! - An agent's **reputation** is `(1 + agreed) / (2 + judged)`: the smoothed share of its
//!   judged votes that agreed with the consensus of the other voters at the time. A new agent
//!   has 0.5; reputation always stays strictly between 0 and 1, so no agent is ever silenced or
//!   all-powerful.
//! - A vote is **judged** when it is cast: against the consensus `S'` of the *other* agents'
//!   current votes on that fact. It agrees if `vote · S' > 0`, disagrees if `vote · S' < 0`,
//!   and is not judged if `|S'| ≤ 1e-9` (no other votes, or a tie).
//! - A vote's **weight** is its agent's reputation when the vote was cast (after withdrawing
//!   the agent's earlier vote on the same fact, before judging this one). Weights are frozen,
//!   so one vote touches one fact and one agent, never the whole graph.
//! - A fact's **consensus** is `S = Σ wᵢ·vᵢ / (1 + Σ wᵢ)` over its current votes (`vᵢ = ±1`),
//!   summed in agent-name order: 0 without votes, strictly inside `(-1, 1)`; the `1` in the
//!   denominator is a neutral prior that many agreeing votes outweigh.
//! - **Re-voting** by the same agent replaces its vote: the old vote's judgment is withdrawn
//!   from the agent's counts, and the new vote is judged and weighted afresh.

use serde::{Deserialize, Serialize};

/// One agent's current vote on one fact. Re-voting replaces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vote {
    /// The fact.
    pub fact_id: u64,
    /// The voter.
    pub agent: String,
    /// +1 (agree) or -1 (disagree).
    pub vote: i8,
    /// Why, if given.
    pub reason: Option<String>,
    /// The voter's reputation when it cast this vote: the vote's weight in the consensus.
    pub weight: f64,
    /// Whether the vote agreed with the consensus of the other voters when cast; `None` if
    /// there was none (no other votes, or a tie). Feeds the voter's reputation.
    pub agreed: Option<bool>,
    /// Ledger index of the `fact.vote` entry.
    pub entry_index: u64,
    /// Timestamp of that entry.
    pub voted_at: String,
}

/// An agent's persisted reputation (see the module docs for the rule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReputation {
    /// The agent.
    pub agent: String,
    /// `(1 + agreed) / (2 + judged)`, in `(0, 1)`; 0.5 for an agent that never voted.
    pub reputation: f64,
    /// Facts it currently has a vote on.
    pub votes: u64,
    /// Of those, votes cast while the other voters had a consensus.
    pub judged: u64,
    /// Of the judged votes, those that agreed with it.
    pub agreed: u64,
}

impl AgentReputation {
    /// The record of an agent that has never voted.
    pub fn new(agent: impl Into<String>) -> Self {
        AgentReputation {
            agent: agent.into(),
            reputation: reputation(0, 0),
            votes: 0,
            judged: 0,
            agreed: 0,
        }
    }
}

/// Weight of the neutral prior in the consensus denominator.
pub const PRIOR_WEIGHT: f64 = 1.0;
/// A consensus within this distance of zero counts as none when judging a vote.
pub const TIE: f64 = 1e-9;

/// Reputation from an agent's counts.
pub fn reputation(agreed: u64, judged: u64) -> f64 {
    (1 + agreed) as f64 / (2 + judged) as f64
}

/// Consensus of `(vote, weight)` pairs (pass them in agent-name order).
pub fn consensus<I: IntoIterator<Item = (i8, f64)>>(votes: I) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (v, w) in votes {
        num += f64::from(v) * w;
        den += w;
    }
    num / (PRIOR_WEIGHT + den)
}

/// Whether `vote` agrees with the prevailing consensus `others` (`None`: nothing to judge).
pub fn judge(vote: i8, others: f64) -> Option<bool> {
    if others.abs() <= TIE {
        None
    } else {
        Some(f64::from(vote) * others > 0.0)
    }
}

/// What casting a vote changes.
#[derive(Debug, Clone, PartialEq)]
pub struct VoteEffect {
    /// The vote as stored (weight and judgment filled in).
    pub vote: Vote,
    /// The agent's record after the vote.
    pub agent: AgentReputation,
    /// The fact's consensus after the vote.
    pub consensus: f64,
    /// The agent's earlier vote on this fact, which this one replaces.
    pub replaced: Option<Vote>,
}

/// Applies the rules above: `current` are the fact's current votes (any order), `record` the
/// voter's record (`None` if it never voted), `new` the vote with `weight` and `agreed` still
/// to be computed.
pub fn cast(current: &[Vote], record: Option<AgentReputation>, mut new: Vote) -> VoteEffect {
    let mut others: Vec<&Vote> = current.iter().filter(|v| v.agent != new.agent).collect();
    others.sort_by(|a, b| a.agent.cmp(&b.agent));
    let replaced = current.iter().find(|v| v.agent == new.agent).cloned();
    let mut agent = record.unwrap_or_else(|| AgentReputation::new(new.agent.clone()));
    match &replaced {
        Some(Vote {
            agreed: Some(agreed),
            ..
        }) => {
            agent.judged = agent.judged.saturating_sub(1);
            if *agreed {
                agent.agreed = agent.agreed.saturating_sub(1);
            }
        }
        Some(_) => {}
        None => agent.votes += 1,
    }
    new.weight = reputation(agent.agreed, agent.judged);
    new.agreed = judge(
        new.vote,
        consensus(others.iter().map(|v| (v.vote, v.weight))),
    );
    if let Some(agreed) = new.agreed {
        agent.judged += 1;
        if agreed {
            agent.agreed += 1;
        }
    }
    agent.reputation = reputation(agent.agreed, agent.judged);
    // The new vote takes its agent's place in name order.
    let pos = others.partition_point(|v| v.agent < new.agent);
    let mut all: Vec<(i8, f64)> = others.iter().map(|v| (v.vote, v.weight)).collect();
    all.insert(pos, (new.vote, new.weight));
    VoteEffect {
        consensus: consensus(all),
        vote: new,
        agent,
        replaced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(agent: &str, v: i8) -> Vote {
        Vote {
            fact_id: 1,
            agent: agent.into(),
            vote: v,
            reason: None,
            weight: 0.0,
            agreed: None,
            entry_index: 0,
            voted_at: String::new(),
        }
    }

    #[test]
    fn first_vote_is_unjudged_and_weighted_by_the_default_reputation() {
        let e = cast(&[], None, vote("a", 1));
        assert_eq!(e.vote.weight, 0.5);
        assert_eq!(e.vote.agreed, None);
        assert!((e.consensus - 0.5 / 1.5).abs() < 1e-12);
        assert_eq!((e.agent.votes, e.agent.judged, e.agent.agreed), (1, 0, 0));
        assert_eq!(e.agent.reputation, 0.5);
    }

    #[test]
    fn agreeing_raises_reputation_and_disagreeing_lowers_it() {
        let a = cast(&[], None, vote("a", 1)).vote;
        let b = cast(std::slice::from_ref(&a), None, vote("b", 1));
        assert_eq!(b.vote.agreed, Some(true));
        assert!((b.agent.reputation - 2.0 / 3.0).abs() < 1e-12);
        let c = cast(&[a.clone(), b.vote.clone()], None, vote("c", -1));
        assert_eq!(c.vote.agreed, Some(false));
        assert!((c.agent.reputation - 1.0 / 3.0).abs() < 1e-12);
        // S = (0.5 + 0.5 - 0.5) / (1 + 1.5)
        assert!((c.consensus - 0.2).abs() < 1e-12, "{}", c.consensus);
    }

    #[test]
    fn revoting_replaces_and_withdraws_the_old_judgment() {
        let a = cast(&[], None, vote("a", 1)).vote;
        let b = cast(std::slice::from_ref(&a), None, vote("b", -1));
        assert_eq!(b.vote.agreed, Some(false));
        let again = cast(
            &[a.clone(), b.vote.clone()],
            Some(b.agent.clone()),
            vote("b", 1),
        );
        assert_eq!(again.replaced.as_ref().map(|v| v.vote), Some(-1));
        assert_eq!(again.vote.agreed, Some(true));
        assert_eq!(
            (again.agent.votes, again.agent.judged, again.agent.agreed),
            (1, 1, 1)
        );
        // The new weight is the reputation with the old judgment withdrawn: back to 0.5.
        assert_eq!(again.vote.weight, 0.5);
    }

    #[test]
    fn consensus_is_bounded() {
        let many: Vec<(i8, f64)> = (0..10_000).map(|_| (1, 0.99)).collect();
        let s = consensus(many);
        assert!(s < 1.0 && s > 0.99);
        assert_eq!(consensus([]), 0.0);
        assert_eq!(judge(1, 0.0), None);
        assert_eq!(judge(-1, 0.3), Some(false));
    }
}
