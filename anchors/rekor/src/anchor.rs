//! [`RekorAnchor`]: logs each signed checkpoint note as a hashedrekord 0.0.2 entry in a Rekor v2
//! log and keeps the returned `TransparencyLogEntry`, verified offline, as the receipt.

use crate::body::Artifact;
use crate::checkpoint::RekorTrust;
use crate::entry::{VerifiedEntry, verify_entry};
use crate::key::EntrySigningKey;
use cortex_core::ledger::entry::now_timestamp;
use cortex_core::{Anchor, BoxFuture, Error, ErrorKind, Receipt, Result, Submission};
use std::time::Duration;

/// The anchor kind stored in receipts.
pub const KIND: &str = "rekor";
/// Rekor v2's write endpoint, under the log's base URL.
pub const ENTRIES_PATH: &str = "/api/v2/log/entries";
/// Default time allowed for one submission. Rekor v2 answers only once a checkpoint covers the
/// new entry; its client notes ask for at least 20 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes of an error reply quoted in an error message.
const QUOTED_REPLY: usize = 512;
/// Most bytes of a reply read: a TransparencyLogEntry is a few kilobytes.
pub const MAX_REPLY: usize = 1 << 20;

/// A Sigstore Rekor v2 log as a CORTEX anchor.
#[derive(Debug)]
pub struct RekorAnchor {
    base_url: String,
    endpoint: String,
    trust: RekorTrust,
    /// The key entries are signed with; `None` for an anchor opened only to check receipts.
    key: Option<EntrySigningKey>,
    client: reqwest::Client,
}

impl RekorAnchor {
    /// An anchor for the log at `base_url` (e.g. `https://log2025-1.rekor.sigstore.dev`),
    /// checking its entries against `trust` and signing entries with `key`; submissions time out
    /// after [`DEFAULT_TIMEOUT`].
    pub fn new(base_url: &str, trust: RekorTrust, key: EntrySigningKey) -> Result<RekorAnchor> {
        Self::with_timeout(base_url, trust, key, DEFAULT_TIMEOUT)
    }

    /// An anchor that only checks receipts (an auditor holds no entry key): `verify_receipt`
    /// accepts an entry signed by any key, as long as it logs the checkpoint note in a
    /// checkpoint signed by a log key of `trust`; `submit` is refused.
    pub fn checker(base_url: &str, trust: RekorTrust) -> Result<RekorAnchor> {
        Self::build(base_url, trust, None, DEFAULT_TIMEOUT)
    }

    /// As [`new`](Self::new), with another timeout for each submission (connect, send, reply).
    pub fn with_timeout(
        base_url: &str,
        trust: RekorTrust,
        key: EntrySigningKey,
        timeout: Duration,
    ) -> Result<RekorAnchor> {
        Self::build(base_url, trust, Some(key), timeout)
    }

    fn build(
        base_url: &str,
        trust: RekorTrust,
        key: Option<EntrySigningKey>,
        timeout: Duration,
    ) -> Result<RekorAnchor> {
        let base_url = check_base_url(base_url)?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| Error::config("cannot build the Rekor HTTP client").with_source(e))?;
        Ok(RekorAnchor {
            endpoint: format!("{base_url}{ENTRIES_PATH}"),
            base_url,
            trust,
            key,
            client,
        })
    }

    /// Verifies a receipt's entry and returns what it proves (index, checkpoint, witnesses).
    pub fn verify_receipt_entry(&self, note: &str, receipt: &Receipt) -> Result<VerifiedEntry> {
        let signer = self.key.as_ref().map(EntrySigningKey::public_key_der);
        verify_receipt(note, receipt, &self.trust, signer.as_deref())
    }

    async fn post_entry(&self, note: &str) -> Result<Vec<u8>> {
        let key = self.key.as_ref().ok_or_else(|| {
            Error::config(format!(
                "the Rekor anchor {} was opened to check receipts only: it has no entry key",
                self.base_url
            ))
        })?;
        let request = serde_json::to_vec(&key.hashedrekord_request(note.as_bytes())?)
            .map_err(|e| Error::backend(format!("cannot encode the Rekor request: {e}")))?;
        let unreachable = |e: reqwest::Error| {
            Error::new(
                ErrorKind::Unavailable,
                format!("Rekor at {} is unreachable: {e}", self.endpoint),
            )
            .with_source(e)
        };
        let mut reply = self
            .client
            .post(&self.endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(request)
            .send()
            .await
            .map_err(unreachable)?;
        let status = reply.status();
        let mut body = Vec::new();
        while let Some(chunk) = reply.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_REPLY {
                return Err(Error::backend(format!(
                    "Rekor at {} sent a reply larger than {MAX_REPLY} bytes (HTTP {status})",
                    self.endpoint
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(refused(&self.endpoint, status, &body));
        }
        Ok(body)
    }
}

/// Verifies a stored Rekor receipt against the checkpoint `note` it was made for, offline: the
/// receipt body is a `TransparencyLogEntry` logging `note` as a hashedrekord, in a checkpoint
/// signed by a log key of `trust`, signed by `expected_signer` when given.
pub fn verify_receipt(
    note: &str,
    receipt: &Receipt,
    trust: &RekorTrust,
    expected_signer: Option<&[u8]>,
) -> Result<VerifiedEntry> {
    if receipt.anchor != KIND {
        return Err(Error::invalid(format!(
            "a {:?} receipt is not a Rekor receipt",
            receipt.anchor
        )));
    }
    verify_entry(
        receipt.body.as_bytes(),
        trust,
        Artifact::Blob(note.as_bytes()),
        expected_signer,
    )
    .map_err(|e| e.with_context("receipt", &receipt.target))
}

/// An error naming a reply that refused the entry. Server errors and rate limiting are
/// [`ErrorKind::Unavailable`] (worth retrying); other refusals are [`ErrorKind::Backend`].
fn refused(endpoint: &str, status: reqwest::StatusCode, body: &[u8]) -> Error {
    let text = String::from_utf8_lossy(body);
    let quoted: String = text.chars().take(QUOTED_REPLY).collect();
    let kind = if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        ErrorKind::Unavailable
    } else {
        ErrorKind::Backend
    };
    Error::new(
        kind,
        format!(
            "Rekor at {endpoint} refused the entry: HTTP {status}: {}",
            quoted.trim()
        ),
    )
}

/// The base URL without a trailing slash; `http://` or (with the `https` feature) `https://`.
fn check_base_url(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::config(format!("Rekor URL {url:?} is not a URL: {e}")))?;
    match parsed.scheme() {
        "http" => {}
        "https" if cfg!(feature = "https") => {}
        "https" => {
            return Err(Error::config(format!(
                "Rekor URL {url:?} is https, but cortex-rekor was built without its `https` feature"
            )));
        }
        other => {
            return Err(Error::config(format!(
                "Rekor URL {url:?} has scheme {other:?}; expected http or https"
            )));
        }
    }
    if parsed.host_str().is_none() || parsed.query().is_some() {
        return Err(Error::config(format!(
            "Rekor URL {url:?} must be a base URL with a host and no query"
        )));
    }
    Ok(url.to_owned())
}

impl Anchor for RekorAnchor {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn target(&self) -> &str {
        &self.base_url
    }

    fn submit<'a>(&'a self, submission: Submission<'a>) -> BoxFuture<'a, Result<Receipt>> {
        Box::pin(async move {
            let note = submission.note;
            let reply = self.post_entry(note).await?;
            let body = String::from_utf8(reply).map_err(|_| {
                Error::integrity(format!(
                    "Rekor at {} replied with non-UTF-8 bytes",
                    self.endpoint
                ))
            })?;
            let receipt = Receipt {
                anchor: KIND.into(),
                target: self.base_url.clone(),
                body,
                created_at: now_timestamp(),
            };
            self.verify_receipt_entry(note, &receipt).map_err(|e| {
                Error::integrity(format!(
                    "Rekor at {} returned an entry that does not verify: {}",
                    self.endpoint,
                    e.message()
                ))
            })?;
            Ok(receipt)
        })
    }

    fn verify_receipt(&self, note: &str, receipt: &Receipt) -> Result<()> {
        self.verify_receipt_entry(note, receipt).map(|_| ())
    }
}
