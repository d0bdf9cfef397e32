//! Sigstore Rekor v2 anchor for CORTEX.
//!
//! Each signed checkpoint note is logged in a Rekor v2 transparency log as a `hashedrekord` 0.0.2
//! entry (the note's digest, signed by a CORTEX-held key), and the log's reply, a
//! `TransparencyLogEntry`, is the receipt. Rekor v2 checkpoints are C2SP signed notes and its
//! proofs are RFC 6962, so the receipt is checked offline with core's own Merkle and note code:
//! [`verify_entry`] recomputes the leaf `SHA-256(0x00 ‖ canonicalizedBody)`, checks the inclusion
//! proof against the checkpoint, the checkpoint's signature against the configured log key (and
//! counts configured witnesses' cosignatures), and the body's digest and signature against the
//! note. docs/FORMATS.md §18.4 gives the byte-level formats.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod anchor;
mod body;
mod checkpoint;
mod entry;
mod key;

pub use anchor::{DEFAULT_TIMEOUT, ENTRIES_PATH, KIND, MAX_REPLY, RekorAnchor, verify_receipt};
pub use body::{Artifact, ECDSA_P256_SHA_256, ED25519, ED25519_PH, certificate_public_key};
pub use checkpoint::{RekorTrust, VerifiedCheckpoint, log_vkey_from_spki, verify_checkpoint};
pub use entry::{VerifiedEntry, verify_entry};
pub use key::EntrySigningKey;
