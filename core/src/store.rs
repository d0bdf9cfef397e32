//! [`Store`]: a ledger store that also keeps the agent memory, the sum of the two halves.
//!
//! The split is by concern. [`LedgerStore`] is everything the ledger needs (entries, tiles, the
//! head, checkpoints, receipts, audit records) and is all an audit-ledger-only backend has to
//! implement. [`FactStore`] is what the agent memory adds (facts, votes, reputations, ranked
//! search, and an append that writes memory changes in the ledger's transaction). `Store` is
//! implemented automatically for any type that has both; the binary, the MCP tools and the
//! memory need it, the ledger, verification and exports need only `LedgerStore`.

use crate::ledger::store::LedgerStore;
use crate::memory::store::FactStore;
use std::sync::Arc;

/// A store holding a ledger and the agent memory built on it.
pub trait Store: LedgerStore + FactStore {}

impl<T: LedgerStore + FactStore + ?Sized> Store for T {}

/// A full store shared across threads. `Arc<dyn Store>` coerces to
/// [`DynLedgerStore`](crate::ledger::store::DynLedgerStore) where only the ledger is needed.
pub type DynStore = Arc<dyn Store>;
