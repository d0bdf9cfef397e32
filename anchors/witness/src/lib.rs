//! C2SP `tlog-witness` for CORTEX, both sides, so one CORTEX instance can anchor another.
//!
//! - [`cosignature`]: witness keys and `cosignature/v1` lines (c2sp.org/tlog-cosignature): key
//!   text forms and files, signing a checkpoint with a timestamp, verifying a line.
//! - [`request`]: the `add-checkpoint` request body (`old <N>`, proof lines, blank line, note).
//! - [`client`]: [`WitnessAnchor`], a [`cortex_core::Anchor`] that submits a ledger's signed
//!   checkpoints to a witness with a consistency proof (retrying once from the size a `409`
//!   reports) and returns the witness's cosignature lines as the receipt, verified first.
//! - [`server`]: [`WitnessServer`], the witness itself: it checks each checkpoint's log signature
//!   and consistency with the last one it cosigned, answers with the statuses the spec gives, and
//!   keeps each log's latest checkpoint and every note it cosigned in a SQLite file
//!   ([`state`]), updated by compare-and-swap so concurrent requests cannot roll a log back.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod cosignature;
pub mod logs;
pub mod request;
pub mod server;
pub mod state;

pub use client::WitnessAnchor;
pub use cosignature::{Cosignature, CosignatureVerifier, WitnessSigner};
pub use logs::KnownLogs;
pub use request::AddCheckpoint;
pub use server::WitnessServer;
pub use state::WitnessState;

/// Seconds since the Unix epoch, the clock of cosignature timestamps.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
