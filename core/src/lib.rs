//! CORTEX core: the traits every plugin implements ([`Store`], [`Hasher`], [`Signer`],
//! [`Anchor`], [`Transport`]), the ledger math (canonical entries, the hash chain, RFC 6962 trees
//! and proofs, C2SP checkpoints and signed notes), verification and exports, and the agent
//! memory built on the ledger ([`AgentMemory`]: facts, BM25 search, reputation-weighted votes).
//!
//! Core depends on no backend, signer, anchor or transport. The math is pure; stores only persist
//! bytes. In-memory implementations ([`MemoryStore`], [`MemoryAnchor`], [`MemoryTransport`]) are
//! always built, for tests and examples; the conformance suite is behind the `testkit` feature.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod agent_memory;
pub mod anchor;
pub mod bm25;
pub mod checkpoint;
pub mod consensus;
#[cfg(any(test, feature = "testkit"))]
pub mod crash;
pub mod entry;
pub mod error;
pub mod export;
pub mod fact;
pub mod group_commit;
pub mod hash;
pub mod ledger;
pub mod mcp;
pub mod memory;
pub mod merkle;
pub mod metrics;
pub mod note;
pub mod proof_file;
pub mod search_index;
pub mod signer;
pub mod store;
pub mod tiles;
pub mod transport;
pub mod verify;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit_peers;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit_tamper;

pub use agent_memory::{AgentMemory, SearchQuery};
pub use anchor::{Anchor, BoxFuture, MemoryAnchor};
pub use checkpoint::{Checkpoint, CheckpointRecord, ExtraSignature, Receipt};
pub use entry::{Entry, EntryRef, NewEntry, StoredEntry, StoredEntryRef};
pub use error::{Error, ErrorKind, Result};
pub use fact::{AgentReputation, Fact, NewFact, SearchHit, Vote};
pub use hash::{Blake3Hasher, Hash, HashAlgorithm, Hasher, Sha256Hasher};
pub use ledger::{AppendContext, AppendOutcome, CheckpointOutcome, Ledger, LedgerOptions};
pub use mcp::McpServer;
pub use memory::MemoryStore;
pub use note::{SignedNote, VerifierKey};
pub use proof_file::ProofFile;
pub use signer::{SignatureScheme, Signer, Verifier};
pub use store::{DynStore, Head, Store};
pub use transport::{MemoryTransport, MessageHandler, Transport};
pub use verify::{VerifyOptions, VerifyReport, Violation, ViolationKind, verify_store};
