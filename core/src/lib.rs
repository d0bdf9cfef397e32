//! CORTEX core: the traits every plugin implements, the ledger math, and the agent memory built
//! on the ledger. Depends on no plugin and on no async runtime.
//!
//! - [`ledger`]: canonical entries, hashers ([`Hasher`]), the RFC 6962 tree, its stored tiles and
//!   proofs, C2SP signed notes and checkpoints with their [`Signer`]s and [`Anchor`]s, the
//!   [`Ledger`] itself, its storage trait [`LedgerStore`], verification, exports and proof files.
//! - [`memory`]: the agent memory ([`AgentMemory`]: facts, BM25 search, reputation-weighted votes)
//!   and its storage trait [`FactStore`]; a view of the ledger, which never names it.
//! - [`Store`] (in `memory::store`): both storage traits at once, what a full backend implements.
//! - [`InMemoryStore`] and [`InMemoryAnchor`]: always built, for tests and examples.
//! - `testkit` (feature `testkit`): the conformance, tamper and crash suites every backend and
//!   signer crate runs against itself.
//!
//! The math is pure; stores only persist bytes.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access;
pub mod embed;
pub mod error;
pub mod in_memory;
pub mod keyfile;
pub mod ledger;
pub mod memory;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use embed::{Embedder, HashEmbedder};
pub use error::{Error, ErrorKind, Result};
pub use in_memory::InMemoryStore;
pub use ledger::anchor::{Anchor, BoxFuture, ConsistencyProver, InMemoryAnchor, Submission};
pub use ledger::checkpoint::{Checkpoint, CheckpointRecord, ExtraSignature, Receipt};
pub use ledger::entry::{Entry, EntryRef, NewEntry, StoredEntry, StoredEntryRef};
pub use ledger::hash::{Blake3Hasher, Hash, HashAlgorithm, Hasher, Sha256Hasher};
pub use ledger::note::{SignedNote, VerifierKey};
pub use ledger::proof_file::ProofFile;
pub use ledger::signer::{SignatureScheme, Signer, Verifier};
pub use ledger::store::{DynLedgerStore, Head, LedgerStore};
pub use ledger::verify::{VerifyOptions, VerifyReport, Violation, ViolationKind, verify_store};
pub use ledger::{AppendOutcome, CheckpointOutcome, Ledger, LedgerOptions};
pub use memory::consensus::{AgentReputation, Vote};
pub use memory::fact::{Fact, NewFact};
pub use memory::store::{DynStore, FactStore, SearchHit, Store};
pub use memory::{AgentMemory, AppendContext, SearchQuery};
