//! The test kit (feature `testkit`): the suites every backend and signer crate runs against
//! itself, in the manner of object_store's exported integration tests, and the rules for tests
//! whose peer is missing. Each check panics with a message naming the broken promise.
//!
//! - [`ledger`]: what the ledger relies on from a [`LedgerStore`](crate::ledger::store::LedgerStore) (a
//!   ledger-only store runs just this), and the signer checks;
//! - [`memory`]: what the agent memory relies on from a [`Store`](crate::memory::store::Store);
//! - [`tamper`]: 41 tamper-detection cases through raw writes, on any ledger store;
//! - [`crash`]: `kill -9` under load, shared by the backends' crash tests.

use crate::ledger::entry::NewEntry;
use crate::ledger::store::DynLedgerStore;
use crate::memory::store::DynStore;

pub mod crash;
pub mod ledger;
pub mod memory;
pub mod peers;
pub mod tamper;

pub use ledger::{ledger_conformance, ledger_with_signer, signer_conformance};
pub use memory::memory_conformance;

/// The variable naming the PostgreSQL server the tests use.
pub const POSTGRES_URL_VAR: &str = "CORTEX_TEST_POSTGRES_URL";

/// Skips a test whose peer (a server, a Python package, the shared vectors) is missing: says
/// so on stderr, past the harness's output capture, so a passing run still shows it; under
/// `CI=true`, where every test must run, it panics instead.
pub fn skip(what: &str, why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} must run, and CI=true makes this a failure: {why}"
    );
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what} did not run: {why}");
}

/// The test PostgreSQL server's URL ([`peers::postgres_url`]: [`POSTGRES_URL_VAR`] or a
/// throwaway cluster), or `None` (after [`skip`], with the cause) when there is none.
pub fn postgres_url(what: &str) -> Option<String> {
    peers::postgres_url().map_err(|why| skip(what, &why)).ok()
}

/// `n` small entries for tests.
pub fn sample_entries(n: usize) -> Vec<NewEntry> {
    (0..n)
        .map(|i| {
            NewEntry::new(
                format!("proj{}", i % 3),
                "test.append",
                format!("{{\"i\":{i}}}"),
            )
        })
        .collect()
}

/// Runs the ledger and the memory conformance suites against fresh stores made by `make`:
/// what a full backend ([`Store`](crate::memory::store::Store)) runs.
pub fn store_conformance(make: &dyn Fn() -> DynStore) {
    ledger_conformance(&|| make() as DynLedgerStore);
    memory_conformance(make);
}
