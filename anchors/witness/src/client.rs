//! [`WitnessAnchor`]: submits a ledger's signed checkpoints to a tlog-witness and keeps its
//! cosignature lines as the receipt.

use crate::cosignature::CosignatureVerifier;
use crate::request::{AddCheckpoint, parse_conflict_body};
use cortex_core::{Anchor, BoxFuture, Error, ErrorKind, Receipt, Result, SignedNote, Submission};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Default limit for one HTTP exchange with the witness (connect, send, read the reply).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A C2SP tlog-witness as an anchor: kind `witness`, target its submission prefix URL.
pub struct WitnessAnchor {
    url: String,
    verifier: CosignatureVerifier,
    http: reqwest::Client,
    /// Per origin, the size this witness is believed to have cosigned last.
    known_sizes: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for WitnessAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessAnchor")
            .field("url", &self.url)
            .field("witness", &self.verifier.name())
            .finish_non_exhaustive()
    }
}

/// One HTTP reply: status and body text.
struct Reply {
    status: u16,
    body: String,
}

impl WitnessAnchor {
    /// A witness at `url` (its submission prefix: requests go to `<url>/add-checkpoint`),
    /// whose cosignatures must verify with `witness_vkey`; [`DEFAULT_TIMEOUT`] per exchange.
    pub fn new(url: &str, witness_vkey: &str) -> Result<WitnessAnchor> {
        Self::with_timeout(url, witness_vkey, DEFAULT_TIMEOUT)
    }

    /// As [`new`](Self::new), with another timeout.
    pub fn with_timeout(url: &str, witness_vkey: &str, timeout: Duration) -> Result<WitnessAnchor> {
        let verifier = CosignatureVerifier::from_vkey(witness_vkey)
            .map_err(|e| e.with_context("witness key", witness_vkey))?;
        let url = url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&url).map_err(|e| {
            Error::config(format!("witness URL {url:?} is not a URL")).with_source(e)
        })?;
        match parsed.scheme() {
            "http" => {}
            "https" if cfg!(feature = "https") => {}
            "https" => {
                return Err(Error::config(format!(
                    "witness URL {url:?} is https, but cortex-witness was built without its \
                     `https` feature"
                )));
            }
            other => {
                return Err(Error::config(format!(
                    "witness URL {url:?} has scheme {other:?}; expected http or https"
                )));
            }
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| Error::config("cannot build the HTTP client").with_source(e))?;
        Ok(WitnessAnchor {
            url,
            verifier,
            http,
            known_sizes: Mutex::new(HashMap::new()),
        })
    }

    /// The witness's verifier.
    pub fn verifier(&self) -> &CosignatureVerifier {
        &self.verifier
    }

    fn known_size(&self, origin: &str) -> u64 {
        self.known_sizes
            .lock()
            .map_or(0, |m| m.get(origin).copied().unwrap_or(0))
    }

    fn remember_size(&self, origin: &str, size: u64) {
        if let Ok(mut m) = self.known_sizes.lock() {
            m.insert(origin.to_owned(), size);
        }
    }

    async fn post(&self, body: String) -> Result<Reply> {
        let endpoint = format!("{}/add-checkpoint", self.url);
        let unreachable = |e: reqwest::Error| {
            let what = if e.is_timeout() {
                "timed out"
            } else {
                "is unreachable"
            };
            Error::new(ErrorKind::Unavailable, format!("witness {endpoint} {what}")).with_source(e)
        };
        let resp = self
            .http
            .post(&endpoint)
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(unreachable)?;
        Ok(Reply { status, body })
    }

    /// One `add-checkpoint` from `old`.
    async fn add_checkpoint(&self, s: &Submission<'_>, old: u64) -> Result<Reply> {
        let proof = s.proofs.consistency_proof(old, s.checkpoint.size)?;
        let request = AddCheckpoint {
            old_size: old,
            proof,
            note: s.note.to_owned(),
        };
        self.post(request.to_body()).await
    }

    /// Submits, retrying once from the size a 409 reports; returns the cosignature lines.
    async fn cosign(&self, s: &Submission<'_>) -> Result<String> {
        let origin = &s.checkpoint.origin;
        let mut old = self.known_size(origin).min(s.checkpoint.size);
        let mut retried = false;
        loop {
            let reply = self.add_checkpoint(s, old).await?;
            if reply.status == 200 {
                return Ok(reply.body);
            }
            if reply.status != 409 || retried {
                return Err(self.refusal(s, old, &reply));
            }
            retried = true;
            let theirs =
                parse_conflict_body(&reply.body).map_err(|_| self.refusal(s, old, &reply))?;
            self.remember_size(origin, theirs);
            if theirs > s.checkpoint.size {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "witness {} has already cosigned {origin} at size {theirs}, larger than \
                         this checkpoint (size {}): it will not cosign an older tree",
                        self.url, s.checkpoint.size
                    ),
                ));
            }
            old = theirs;
        }
    }

    /// The error for a refusal, with the status and the witness's own words.
    fn refusal(&self, s: &Submission<'_>, old: u64, reply: &Reply) -> Error {
        let (kind, meaning) = match reply.status {
            400 => (ErrorKind::InvalidInput, "rejected the request as malformed"),
            403 => (
                ErrorKind::Config,
                "does not trust the log's signature (is the log's key configured there?)",
            ),
            404 => (
                ErrorKind::Config,
                "does not know this log's origin (ask its operator to add the log)",
            ),
            409 => (
                ErrorKind::Conflict,
                "has a different view of this log (a fork, or another client's checkpoint)",
            ),
            422 => (
                ErrorKind::Integrity,
                "says the checkpoint is not consistent with the one it cosigned last",
            ),
            408 | 429 | 500..=599 => (ErrorKind::Unavailable, "failed; retry later"),
            _ => (ErrorKind::Backend, "answered unexpectedly"),
        };
        let body: String = reply.body.trim().chars().take(300).collect();
        Error::new(
            kind,
            format!(
                "witness {} {meaning}: HTTP {} {body:?} (checkpoint {} size {}, old {old})",
                self.url, reply.status, s.checkpoint.origin, s.checkpoint.size
            ),
        )
        .with_context("status", reply.status)
    }

    /// The note text (checkpoint body) a receipt must cosign.
    fn note_text(note: &str) -> Result<String> {
        Ok(SignedNote::parse(note.as_bytes())
            .map_err(|e| e.with_context("checkpoint", "the note the receipt is for"))?
            .text)
    }
}

impl Anchor for WitnessAnchor {
    fn kind(&self) -> &'static str {
        "witness"
    }

    fn target(&self) -> &str {
        &self.url
    }

    fn submit<'a>(&'a self, submission: Submission<'a>) -> BoxFuture<'a, Result<Receipt>> {
        Box::pin(async move {
            let text = Self::note_text(submission.note)?;
            let lines = self.cosign(&submission).await?;
            self.remember_size(&submission.checkpoint.origin, submission.checkpoint.size);
            self.verifier.verify_lines(&text, &lines).map_err(|e| {
                Error::integrity(format!(
                    "witness {} returned a cosignature that does not verify: {}",
                    self.url,
                    e.message()
                ))
            })?;
            Ok(Receipt {
                anchor: self.kind().into(),
                target: self.url.clone(),
                body: lines,
                created_at: cortex_core::ledger::entry::now_timestamp(),
            })
        })
    }

    fn verify_receipt(&self, note: &str, receipt: &Receipt) -> Result<()> {
        if receipt.anchor != self.kind() {
            return Err(Error::invalid(format!(
                "receipt is from a {:?} anchor, not a witness",
                receipt.anchor
            )));
        }
        let text = Self::note_text(note)?;
        self.verifier
            .verify_lines(&text, &receipt.body)
            .map(|_| ())
            .map_err(|e| e.with_context("receipt target", &receipt.target))
    }
}
