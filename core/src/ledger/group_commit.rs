//! Group commit: many concurrent single-entry appends share one durable transaction.
//!
//! Callers hand their entry to one committer thread and wait. The committer takes everything
//! queued (up to [`MAX_GROUP`] entries), appends it as one batch (one transaction, one fsync) and
//! answers each caller with its index. A call returns only once its entry is committed, so every
//! acknowledgement still means "durable", while the cost of the commit is shared by everyone who
//! arrived during the previous one.
//!
//! Only the members of a finished group are woken, each through its own reply channel: with 64
//! writers on 2 cores, waking every waiter after every commit (a condition variable's
//! `notify_all`) cost more than the fsync itself.

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::ledger::entry::NewEntry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::JoinHandle;

/// Most entries one group commits in one transaction.
pub const MAX_GROUP: usize = 4096;

type Reply = SyncSender<Result<u64>>;

/// Appends single entries from many threads through shared commits.
pub struct GroupCommit {
    ledger: Arc<Ledger>,
    groups: Arc<AtomicU64>,
    queue: Option<Sender<(NewEntry, Reply)>>,
    committer: Option<JoinHandle<()>>,
}

impl GroupCommit {
    /// Group commits over `ledger`, with a committer thread of their own (stopped on drop, after
    /// the queued entries are committed).
    pub fn new(ledger: Arc<Ledger>) -> Self {
        let (tx, rx) = channel();
        let (l, groups) = (ledger.clone(), Arc::new(AtomicU64::new(0)));
        let g = groups.clone();
        let committer = std::thread::Builder::new()
            .name("cortex-group-commit".into())
            .spawn(move || commit_loop(&l, &rx, &g))
            .ok();
        GroupCommit {
            ledger,
            groups,
            queue: committer.as_ref().map(|_| tx),
            committer,
        }
    }

    /// The ledger.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// How many groups (transactions) have been committed so far, failed ones included.
    pub fn groups(&self) -> u64 {
        self.groups.load(Ordering::Relaxed)
    }

    /// Appends one entry and returns its index once the transaction holding it has committed.
    /// A bad entry is refused before it joins a group, so it never fails anyone else's append.
    pub fn append(&self, entry: NewEntry) -> Result<u64> {
        entry.validate()?;
        let Some(queue) = &self.queue else {
            // No committer thread could be started: commit alone.
            return Ok(self
                .ledger
                .append(std::slice::from_ref(&entry))?
                .first_index);
        };
        let (reply, answer) = sync_channel(1);
        queue
            .send((entry, reply))
            .map_err(|_| Error::backend("the group commit thread has stopped"))?;
        answer.recv().unwrap_or_else(|_| {
            Err(Error::backend(
                "the group commit thread stopped before answering; the entry may or may not \
                 have been committed",
            ))
        })
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.queue = None; // the committer drains what is queued, then sees the queue closed
        if let Some(t) = self.committer.take() {
            let _ = t.join();
        }
    }
}

fn commit_loop(ledger: &Ledger, queue: &Receiver<(NewEntry, Reply)>, groups: &AtomicU64) {
    // Answers go out from a thread of their own, so waking a group's members (a futex call
    // each, and on 2 cores the woken callers preempting whoever woke them) overlaps the next
    // group's commit instead of delaying it.
    let (answers, to_answer) = channel::<(Result<u64>, Vec<Reply>)>();
    let answerer = std::thread::Builder::new()
        .name("cortex-group-answer".into())
        .spawn(move || {
            while let Ok((outcome, replies)) = to_answer.recv() {
                answer(&outcome, replies);
            }
        })
        .ok();
    let mut entries = Vec::new();
    let mut replies = Vec::new();
    // Block for the first entry of a group, then take whatever else is already waiting.
    while let Ok((e, r)) = queue.recv() {
        entries.push(e);
        replies.push(r);
        while entries.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok((e, r)) => {
                    entries.push(e);
                    replies.push(r);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let outcome = ledger.append(&entries).map(|o| o.first_index);
        groups.fetch_add(1, Ordering::Relaxed);
        entries.clear();
        let group = (outcome, std::mem::take(&mut replies));
        if answerer.is_some() {
            let _ = answers.send(group);
        } else {
            answer(&group.0, group.1);
        }
    }
    drop(answers);
    if let Some(t) = answerer {
        let _ = t.join();
    }
}

/// Tells each member of a group its index (the group's first index plus its place), or the
/// group's error.
fn answer(outcome: &Result<u64>, replies: Vec<Reply>) {
    for (k, r) in replies.into_iter().enumerate() {
        // A caller that has gone away no longer needs its answer.
        let _ = r.send(match outcome {
            Ok(first) => Ok(first + k as u64),
            Err(e) => Err(Error::new(e.kind(), e.message().to_owned())),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::in_memory::InMemoryStore;
    use crate::ledger::LedgerOptions;

    #[test]
    fn drop_commits_what_is_queued_and_stops_the_thread() {
        let ledger = Arc::new(
            Ledger::open(Arc::new(InMemoryStore::new()), LedgerOptions::default()).unwrap(),
        );
        let gc = GroupCommit::new(ledger.clone());
        let got: Vec<u64> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|t| {
                    let gc = &gc;
                    s.spawn(move || {
                        gc.append(NewEntry::new("p", "a", format!("{{\"t\":{t}}}")))
                            .unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        drop(gc);
        let mut got = got;
        got.sort_unstable();
        assert_eq!(got, (0..8).collect::<Vec<_>>());
        assert_eq!(ledger.store().head().unwrap().size, 8);
    }
}
