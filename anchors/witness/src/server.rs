//! The witness server: `POST <prefix>/add-checkpoint` per c2sp.org/tlog-witness.
//!
//! Statuses, in the order the checks run:
//!
//! | status | when |
//! |---|---|
//! | 413 | body larger than [`MAX_BODY_BYTES`] |
//! | 400 | body, note or checkpoint malformed; `old` above the checkpoint size; size above 2^63-1 |
//! | 404 | the checkpoint's origin is not a known log |
//! | 403 | no signature by a key trusted for the origin verifies (or one by such a key is invalid) |
//! | 409 | `old` is not the size last cosigned for the origin (body: that size and `\n`, content type `text/x.tlog.size`); or `old` equals the checkpoint size but the roots differ; or another request advanced the log first |
//! | 422 | the consistency proof does not verify (or is not empty from size 0) |
//! | 200 | cosigned: the body is the witness's cosignature line |
//!
//! A rollback (a checkpoint smaller than the one cosigned) is therefore a 409 when `old` is the
//! client's stale view, and a 400 when `old` is the stored size (old above the new size).

use crate::cosignature::WitnessSigner;
use crate::logs::KnownLogs;
use crate::request::{AddCheckpoint, SIZE_CONTENT_TYPE};
use crate::state::{Advance, LogHead, WitnessState};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cortex_core::ledger::checkpoint::algorithm_of_origin;
use cortex_core::ledger::merkle::verify_consistency;
use cortex_core::{Checkpoint, Error, Result, SignedNote};
use std::sync::Arc;

/// Largest request body accepted (a note is at most a few KiB; 63 proof lines are 2.8 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the witness answers to one `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200: the cosignature line(s).
    Cosigned(String),
    /// 409 with the size last cosigned for the origin.
    Conflict(u64),
    /// Any other refusal: status and a one-line reason.
    Refused(u16, String),
}

impl Outcome {
    fn refused(status: StatusCode, reason: impl Into<String>) -> Outcome {
        Outcome::Refused(status.as_u16(), reason.into())
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Outcome::Cosigned(_) => 200,
            Outcome::Conflict(_) => 409,
            Outcome::Refused(s, _) => *s,
        }
    }
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        let text = "text/plain; charset=utf-8";
        match self {
            Outcome::Cosigned(lines) => (StatusCode::OK, [(header::CONTENT_TYPE, text)], lines),
            Outcome::Conflict(size) => (
                StatusCode::CONFLICT,
                [(header::CONTENT_TYPE, SIZE_CONTENT_TYPE)],
                format!("{size}\n"),
            ),
            Outcome::Refused(status, reason) => (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [(header::CONTENT_TYPE, text)],
                format!("{reason}\n"),
            ),
        }
        .into_response()
    }
}

/// A witness: its key, the logs it serves, its state.
#[derive(Debug)]
pub struct WitnessServer {
    signer: WitnessSigner,
    logs: KnownLogs,
    state: WitnessState,
}

/// A checked request, ready to be compared with the stored state.
struct Submitted {
    request: AddCheckpoint,
    note: SignedNote,
    checkpoint: Checkpoint,
}

impl WitnessServer {
    /// A witness signing with `signer`, serving `logs`, keeping its state in `state`.
    pub fn new(signer: WitnessSigner, logs: KnownLogs, state: WitnessState) -> WitnessServer {
        WitnessServer {
            signer,
            logs,
            state,
        }
    }

    /// The witness's verifier key (algorithm 0x04), for the logs' configuration.
    pub fn vkey(&self) -> String {
        self.signer.to_vkey()
    }

    /// The state store.
    pub fn state(&self) -> &WitnessState {
        &self.state
    }

    /// Handles one `add-checkpoint` body. Client mistakes are refusals with their status;
    /// only a failure of the witness's own state is an `Err` (a 500).
    pub fn add_checkpoint(&self, body: &[u8]) -> Result<Outcome> {
        let s = match self.check_request(body) {
            Ok(s) => s,
            Err(refusal) => return Ok(refusal),
        };
        let stored = self.state.latest(&s.checkpoint.origin)?;
        if let Err(refusal) = check_against(&s, stored.as_ref()) {
            return Ok(refusal);
        }
        let cosig = self.signer.cosign(&s.note.text, crate::unix_now())?;
        let line = cosig.to_line();
        let new = LogHead {
            size: s.checkpoint.size,
            root: s.checkpoint.root,
            note: s.request.note.clone(),
        };
        let whole = format!("{}{line}", s.request.note);
        match self.state.advance(
            &s.checkpoint.origin,
            stored.as_ref(),
            &new,
            &whole,
            cosig.timestamp,
        )? {
            Advance::Advanced => Ok(Outcome::Cosigned(line)),
            Advance::Conflict(size) => Ok(Outcome::Conflict(size)),
        }
    }

    /// Parses the body and checks what needs no state: grammar, origin, log signature, sizes.
    fn check_request(&self, body: &[u8]) -> std::result::Result<Submitted, Outcome> {
        let bad = |e: Error| Outcome::refused(StatusCode::BAD_REQUEST, e.message());
        let request = AddCheckpoint::parse(body).map_err(bad)?;
        let note = SignedNote::parse(request.note.as_bytes()).map_err(bad)?;
        let checkpoint = Checkpoint::parse(&note.text).map_err(bad)?;
        let Some(keys) = self.logs.keys(&checkpoint.origin) else {
            return Err(Outcome::refused(
                StatusCode::NOT_FOUND,
                format!("unknown log {:?}", checkpoint.origin),
            ));
        };
        note.verify(&keys).map_err(|e| {
            Outcome::refused(
                StatusCode::FORBIDDEN,
                format!("invalid signature: {}", e.message()),
            )
        })?;
        if request.old_size > checkpoint.size {
            return Err(Outcome::refused(
                StatusCode::BAD_REQUEST,
                format!(
                    "old size {} is above the checkpoint size {}",
                    request.old_size, checkpoint.size
                ),
            ));
        }
        if i64::try_from(checkpoint.size).is_err() {
            return Err(Outcome::refused(
                StatusCode::BAD_REQUEST,
                format!("tree size {} is above 2^63-1", checkpoint.size),
            ));
        }
        Ok(Submitted {
            request,
            note,
            checkpoint,
        })
    }
}

/// Checks a request against the log's latest cosigned checkpoint: `old` must be its size, and
/// the proof must show the new checkpoint extends it.
fn check_against(s: &Submitted, stored: Option<&LogHead>) -> std::result::Result<(), Outcome> {
    let (old, cp) = (s.request.old_size, &s.checkpoint);
    let stored_size = stored.map_or(0, |h| h.size);
    if old != stored_size {
        return Err(Outcome::Conflict(stored_size));
    }
    let proof_fails = |why: String| {
        Outcome::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("bad consistency proof: {why}"),
        )
    };
    let Some(head) = stored.filter(|_| old > 0) else {
        if !s.request.proof.is_empty() {
            return Err(proof_fails("the proof from size 0 must be empty".into()));
        }
        return Ok(());
    };
    if old == cp.size && head.root != cp.root {
        return Err(Outcome::Conflict(stored_size));
    }
    let hasher = algorithm_of_origin(&cp.origin).hasher();
    verify_consistency(
        &*hasher,
        old,
        cp.size,
        &head.root,
        &cp.root,
        &s.request.proof,
    )
    .map_err(|e| proof_fails(e.message().to_owned()))
}

/// The witness's HTTP routes: `POST /add-checkpoint` (other methods get 405, other paths 404).
pub fn router(server: Arc<WitnessServer>) -> axum::Router {
    axum::Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(server)
}

async fn add_checkpoint(State(server): State<Arc<WitnessServer>>, body: Bytes) -> Response {
    // SQLite writes block: keep them off the async workers.
    let handled = tokio::task::spawn_blocking(move || server.add_checkpoint(&body)).await;
    match handled {
        Ok(Ok(outcome)) => outcome.into_response(),
        Ok(Err(e)) => Outcome::refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("witness error: {e}"),
        )
        .into_response(),
        Err(_) => Outcome::refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            "witness error: the request handler failed",
        )
        .into_response(),
    }
}

/// Serves the witness on `listener` until `shutdown` completes (then in-flight requests
/// finish) or the listener fails.
pub async fn serve(
    server: Arc<WitnessServer>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router(server))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::backend("the witness server stopped").with_source(e))
}
