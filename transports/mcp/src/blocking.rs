//! Runs a tool whose time grows with the data off the async executor: on the tokio runtime's
//! blocking pool (bounded by the runtime's `max_blocking_threads`, 512 by default, and reused
//! between calls), so many slow calls at once queue instead of starting a thread each. Outside a
//! tokio runtime (an embedder driving the server with its own executor) the call runs inline.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f` on the blocking pool; resolves to its value, or to the panic payload if it panicked.
pub(crate) async fn run<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => match rt
            .spawn_blocking(move || catch_unwind(AssertUnwindSafe(f)))
            .await
        {
            Ok(outcome) => outcome,
            // Cancelled: the runtime is shutting down.
            Err(e) => Err(Box::new(format!("the blocking task did not finish: {e}"))),
        },
        Err(_) => catch_unwind(AssertUnwindSafe(f)),
    }
}
