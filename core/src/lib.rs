//! CORTEX core: the traits every plugin implements ([`Store`], [`Hasher`], [`Signer`],
//! [`Anchor`], [`Transport`]), the ledger math (canonical entries, the hash chain, RFC 6962 trees
//! and proofs, C2SP checkpoints and signed notes), verification and exports.
//!
//! Core depends on no backend, signer, anchor or transport. The math is pure; stores only persist
//! bytes. In-memory implementations ([`MemoryStore`], [`MemoryAnchor`], [`MemoryTransport`]) are
//! always built, for tests and examples; the conformance suite is behind the `testkit` feature.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod anchor;
pub mod checkpoint;
pub mod entry;
pub mod error;
pub mod export;
pub mod hash;
pub mod ledger;
pub mod memory;
pub mod merkle;
pub mod note;
pub mod proof_file;
pub mod signer;
pub mod store;
pub mod tiles;
pub mod transport;
pub mod verify;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use anchor::{Anchor, BoxFuture, MemoryAnchor};
pub use checkpoint::{Checkpoint, CheckpointRecord, ExtraSignature, Receipt};
pub use entry::{Entry, EntryRef, NewEntry, StoredEntry, StoredEntryRef};
pub use error::{Error, ErrorKind, Result};
pub use hash::{Blake3Hasher, Hash, HashAlgorithm, Hasher, Sha256Hasher};
pub use ledger::{AppendOutcome, CheckpointOutcome, Ledger, LedgerOptions};
pub use memory::MemoryStore;
pub use note::{SignedNote, VerifierKey};
pub use proof_file::ProofFile;
pub use signer::{SignatureScheme, Signer, Verifier};
pub use store::{DynStore, Head, Store};
pub use transport::{MemoryTransport, MessageHandler, Transport};
pub use verify::{VerifyOptions, VerifyReport, Violation, ViolationKind, verify_store};
