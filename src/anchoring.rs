//! The background anchoring thread of long-running commands (`mcp start`, `ledger checkpoint
//! --interval`): it submits the newest checkpoint to each anchor that has no receipt for it,
//! with the retry and backoff rules of `cortex_core::ledger::anchoring`, on its own thread and
//! async runtime, so appends and checkpoints never wait for an anchor.

use cortex_core::ledger::anchoring::{AnchorOutcome, AnchorStatus, anchor_pending, statuses};
use cortex_core::{Anchor, Error, Ledger, Result};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the thread looks for a new checkpoint when nothing wakes it.
pub const POLL: Duration = Duration::from_millis(500);

type Signal = Arc<(Mutex<bool>, Condvar)>;

/// A running anchoring thread; dropping it stops the thread after its current round.
pub struct AnchorWorker {
    signal: Signal,
    handle: Option<JoinHandle<()>>,
}

impl AnchorWorker {
    /// Starts the thread, or returns `None` when there is no anchor to submit to. After each
    /// round it hands every anchor's status to `on_status` (the metrics' anchor gauges).
    pub fn spawn(
        ledger: Arc<Ledger>,
        anchors: Vec<Arc<dyn Anchor>>,
        on_status: Box<dyn Fn(Vec<AnchorStatus>) + Send>,
    ) -> Result<Option<Self>> {
        if anchors.is_empty() {
            return Ok(None);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::backend(format!("cannot start the anchoring runtime: {e}")))?;
        let signal: Signal = Arc::new((Mutex::new(false), Condvar::new()));
        let theirs = signal.clone();
        let handle = std::thread::Builder::new()
            .name("cortex-anchoring".into())
            .spawn(move || {
                let mut last: Vec<AnchorOutcome> = Vec::new();
                let wanted: Vec<(String, String)> = anchors
                    .iter()
                    .map(|a| (a.kind().to_owned(), a.target().to_owned()))
                    .collect();
                loop {
                    match rt.block_on(anchor_pending(&ledger, &anchors, false)) {
                        Ok(outcomes) => {
                            for o in outcomes.iter().filter(|o| !last.contains(o)) {
                                report(o);
                            }
                            last = outcomes;
                        }
                        Err(e) => eprintln!("! anchoring round failed: {e}"),
                    }
                    let store = &**ledger.store();
                    if let Ok(s) = store
                        .checkpoints()
                        .and_then(|cps| statuses(store, &cps, &wanted))
                    {
                        on_status(s);
                    }
                    let (lock, cv) = &*theirs;
                    let Ok(stop) = lock.lock() else { return };
                    let Ok((stop, _)) = cv.wait_timeout(stop, POLL) else {
                        return;
                    };
                    if *stop {
                        return;
                    }
                }
            })
            .map_err(|e| Error::backend(format!("cannot start the anchoring thread: {e}")))?;
        Ok(Some(AnchorWorker {
            signal,
            handle: Some(handle),
        }))
    }
}

impl Drop for AnchorWorker {
    fn drop(&mut self) {
        if let Ok(mut stop) = self.signal.0.lock() {
            *stop = true;
            self.signal.1.notify_all();
        }
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One line on stderr per change: anchored, or failed with when the next try is.
pub fn report(o: &AnchorOutcome) {
    match o.result {
        "anchored" => eprintln!(
            "✓ checkpoint {} anchored by {} {}",
            o.size, o.kind, o.target
        ),
        "failed" => eprintln!(
            "! checkpoint {} not anchored by {} {}: {} (will retry)",
            o.size,
            o.kind,
            o.target,
            o.detail.as_deref().unwrap_or("?")
        ),
        _ => {}
    }
}
