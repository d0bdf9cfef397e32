//! Runs a blocking closure on its own OS thread and returns a future of its result, without
//! depending on an async runtime (core has none). Used for tools whose time grows with the data.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

type Outcome<T> = std::thread::Result<T>;

struct Slot<T> {
    value: Option<Outcome<T>>,
    waker: Option<Waker>,
}

/// The future returned by [`run`].
pub struct Blocking<T>(Arc<Mutex<Slot<T>>>);

/// Starts `f` on a new thread; the future resolves to its value or to the panic payload.
pub fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Blocking<T> {
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
    }));
    let theirs = slot.clone();
    let spawned = std::thread::Builder::new()
        .name("cortex-mcp-blocking".into())
        .spawn(move || {
            let out = catch_unwind(AssertUnwindSafe(f));
            let mut s = theirs.lock().unwrap_or_else(|p| p.into_inner());
            s.value = Some(out);
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        });
    if let Err(e) = spawned {
        let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
        s.value = Some(Err(Box::new(format!("cannot start a thread: {e}"))));
    }
    Blocking(slot)
}

impl<T> Future for Blocking<T> {
    type Output = Outcome<T>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<T>> {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match s.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
