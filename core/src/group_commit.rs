//! Group commit: many concurrent single-entry appends share one durable transaction.
//!
//! Each caller's entry is queued; whichever caller finds no commit in progress becomes the leader,
//! takes the whole queue, appends it as one batch (one fsync), and wakes the others with their
//! indices. A call returns only once its entry is committed, so every acknowledgement still means
//! "durable", while the cost of the commit is shared by everyone who arrived during the last one.

use crate::entry::NewEntry;
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

#[derive(Default)]
struct State {
    queue: Vec<(u64, NewEntry)>,
    done: HashMap<u64, Result<u64>>,
    committing: bool,
    next_ticket: u64,
}

/// Appends single entries from many threads through shared commits.
pub struct GroupCommit {
    ledger: Arc<Ledger>,
    state: Mutex<State>,
    wake: Condvar,
}

impl GroupCommit {
    /// Group commits over `ledger`.
    pub fn new(ledger: Arc<Ledger>) -> Self {
        GroupCommit {
            ledger,
            state: Mutex::default(),
            wake: Condvar::new(),
        }
    }

    /// The ledger.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// Appends one entry and returns its index once the transaction holding it has committed.
    /// A bad entry is refused before it joins a group, so it never fails anyone else's append.
    pub fn append(&self, entry: NewEntry) -> Result<u64> {
        entry.validate()?;
        let poisoned = || Error::backend("group commit lock poisoned");
        let mut st = self.state.lock().map_err(|_| poisoned())?;
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.queue.push((ticket, entry));
        loop {
            if let Some(r) = st.done.remove(&ticket) {
                return r;
            }
            if st.committing {
                st = self.wake.wait(st).map_err(|_| poisoned())?;
                continue;
            }
            // Lead the next group: everything queued so far, ours included.
            st.committing = true;
            let group = std::mem::take(&mut st.queue);
            drop(st);
            let (tickets, entries): (Vec<u64>, Vec<NewEntry>) = group.into_iter().unzip();
            let outcome = self.ledger.append(&entries);
            st = self.state.lock().map_err(|_| poisoned())?;
            match outcome {
                Ok(o) => {
                    for (k, t) in tickets.into_iter().enumerate() {
                        st.done.insert(t, Ok(o.first_index + k as u64));
                    }
                }
                Err(e) => {
                    for t in tickets {
                        st.done
                            .insert(t, Err(Error::new(e.kind(), e.message().to_owned())));
                    }
                }
            }
            st.committing = false;
            self.wake.notify_all();
        }
    }
}
