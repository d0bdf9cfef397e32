//! Group commit for fact stores: concurrent [`AgentMemory::store_facts`] calls share durable
//! transactions, as single ledger appends do ([`crate::ledger::group_commit`]).
//!
//! Each caller checks and seals its facts itself (so a bad fact is refused before it joins a
//! group), then hands them to one committer thread and waits. The committer takes every store
//! queued during the previous commit (up to [`MAX_GROUP_FACTS`] facts), writes them in one
//! transaction (one fsync) and answers each caller with its own facts and ids. If a group's
//! transaction fails, nothing of it was written, and its members are committed one by one, so
//! one member's failure is never another's.

use super::{AgentMemory, PreparedStore, Stored};
use crate::error::{Error, Result};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::JoinHandle;

/// Most facts one group writes in one transaction (a larger single store goes alone).
pub const MAX_GROUP_FACTS: usize = 4096;

type Job = (PreparedStore, SyncSender<Result<Stored>>);

/// The committer thread and its queue.
pub(crate) struct StoreGroups {
    queue: Option<Sender<Job>>,
    committer: Option<JoinHandle<()>>,
}

impl StoreGroups {
    /// A committer writing through `memory` (a handle without groups of its own).
    pub(crate) fn new(memory: AgentMemory) -> Self {
        let (tx, rx) = channel();
        let committer = std::thread::Builder::new()
            .name("cortex-store-groups".into())
            .spawn(move || commit_loop(&memory, &rx))
            .ok();
        StoreGroups {
            queue: committer.as_ref().map(|_| tx),
            committer,
        }
    }

    /// Commits `prepared` in the next group and returns once it is committed.
    pub(crate) fn submit(&self, prepared: PreparedStore) -> Result<Stored> {
        let Some(queue) = &self.queue else {
            return Err(Error::backend(
                "the store group thread could not be started",
            ));
        };
        let (reply, answer) = sync_channel(1);
        queue
            .send((prepared, reply))
            .map_err(|_| Error::backend("the store group thread has stopped"))?;
        answer.recv().unwrap_or_else(|_| {
            Err(Error::backend(
                "the store group thread stopped before answering; the facts may or may not \
                 have been stored",
            ))
        })
    }
}

impl Drop for StoreGroups {
    fn drop(&mut self) {
        self.queue = None; // the committer drains what is queued, then sees the queue closed
        if let Some(t) = self.committer.take() {
            let _ = t.join();
        }
    }
}

fn commit_loop(memory: &AgentMemory, queue: &Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut size = first.0.entries.len();
        let mut jobs = vec![first];
        while size < MAX_GROUP_FACTS {
            match queue.try_recv() {
                Ok(job) => {
                    size += job.0.entries.len();
                    jobs.push(job);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let (stores, replies): (Vec<PreparedStore>, Vec<_>) = jobs.into_iter().unzip();
        match memory.commit_stores(stores.clone()) {
            Ok(stored) => {
                for (s, r) in stored.into_iter().zip(replies) {
                    // A caller that has gone away no longer needs its answer.
                    let _ = r.send(Ok(s));
                }
            }
            Err(e) if stores.len() == 1 => {
                if let Some(r) = replies.into_iter().next() {
                    let _ = r.send(Err(e));
                }
            }
            // Nothing of the group was written: each member alone.
            Err(_) => {
                for (s, r) in stores.into_iter().zip(replies) {
                    let one = memory
                        .commit_stores(vec![s])
                        .and_then(|mut v| v.pop().ok_or_else(|| Error::backend("nothing stored")));
                    let _ = r.send(one);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::InMemoryStore;
    use crate::ledger::LedgerOptions;
    use crate::memory::AgentMemory;
    use crate::memory::fact::{Author, NewFact};
    use std::sync::Arc;

    #[test]
    fn concurrent_stores_share_commits_and_each_gets_its_own_facts() {
        let store: crate::DynStore = Arc::new(InMemoryStore::new());
        let memory = AgentMemory::open(store, LedgerOptions::default())
            .unwrap()
            .with_group_commit();
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let m = memory
                        .as_author(Author::new(Some(&format!("agent-{t}")), "test"))
                        .unwrap();
                    s.spawn(move || {
                        (0..50)
                            .map(|i| {
                                let content = if t == 3 && i == 7 {
                                    " ".to_owned() // refused: blank content
                                } else {
                                    format!("fact {t}-{i}")
                                };
                                (t, i, m.store_fact(&NewFact::new("p", content)))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let mut ids = Vec::new();
        for (t, i, r) in results {
            if t == 3 && i == 7 {
                assert!(r.is_err(), "the bad fact is refused");
                continue;
            }
            let stored = r.unwrap();
            let f = &stored.facts[0];
            assert_eq!(f.content, format!("fact {t}-{i}"));
            assert_eq!(f.author.as_deref(), Some(format!("agent-{t}").as_str()));
            assert_eq!((f.id, stored.append.count), (stored.append.first_index, 1));
            assert_eq!(memory.fact(f.id).unwrap().content, f.content);
            ids.push(f.id);
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            399,
            "every acknowledged store has an id of its own"
        );
        assert_eq!(memory.ledger().head().unwrap().size, 399);
    }
}
