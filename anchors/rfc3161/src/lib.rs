//! CORTEX anchor to an RFC 3161 time-stamping authority (TSA).
//!
//! [`Rfc3161Anchor`] sends the SHA-256 of a signed checkpoint note, exactly as stored, to a TSA
//! and keeps the signed time-stamp token it returns as the receipt (base64 of the token's DER,
//! a CMS `ContentInfo` of `SignedData`). The receipt proves the checkpoint existed at the
//! token's `genTime`, and anyone can check it offline: with [`verify_token`] here, or with
//! `openssl ts -verify -data note.txt -in token.der -token_in -CAfile root.pem`.
//! The byte-level format is in `docs/FORMATS.md §18.3`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod asn1;
mod chain;
mod client;
mod crypto;
mod time;
mod token;
mod trust;

pub use token::{Timestamp, verify_response, verify_token};
pub use trust::TrustStore;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cortex_core::ledger::anchor::{Anchor, BoxFuture, Submission};
use cortex_core::{Error, Receipt, Result};
use std::time::Duration;

/// The anchor kind stored in receipts.
pub const KIND: &str = "rfc3161";

/// An RFC 3161 time-stamping authority as a CORTEX anchor.
#[derive(Debug)]
pub struct Rfc3161Anchor {
    client: client::TsaClient,
    trust: TrustStore,
}

impl Rfc3161Anchor {
    /// How long one request may take, connection included, unless set otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// An anchor posting to `url` (an `http://` TSA endpoint) whose tokens must chain to
    /// `trust`.
    pub fn new(url: &str, trust: TrustStore) -> Result<Self> {
        Ok(Rfc3161Anchor {
            client: client::TsaClient::new(url, Self::DEFAULT_TIMEOUT)?,
            trust,
        })
    }

    /// The same anchor with another request timeout.
    pub fn with_timeout(self, timeout: Duration) -> Result<Self> {
        Ok(Rfc3161Anchor {
            client: client::TsaClient::new(self.client.url(), timeout)?,
            trust: self.trust,
        })
    }

    /// Asks the TSA to timestamp `message` and verifies the answer fully (token, nonce)
    /// before returning the token's DER and what it asserts.
    pub async fn timestamp(&self, message: &[u8]) -> Result<(Vec<u8>, Timestamp)> {
        let request = client::TimestampRequest::new(message)?;
        let response = self.client.post(&request.der).await?;
        let (token, timestamp) = verify_response(&response, message, &self.trust)
            .map_err(|e| e.with_context("tsa", self.client.url()))?;
        request.check_nonce(&timestamp)?;
        Ok((token, timestamp))
    }

    /// Checks a receipt body (base64 of a token's DER) against `message`, offline.
    pub fn verify_body(&self, message: &[u8], body: &str) -> Result<Timestamp> {
        let token = STANDARD
            .decode(body.trim())
            .map_err(|e| Error::integrity(format!("RFC 3161 receipt body is not base64: {e}")))?;
        verify_token(&token, message, &self.trust)
    }
}

impl Anchor for Rfc3161Anchor {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn target(&self) -> &str {
        self.client.url()
    }

    fn submit<'a>(&'a self, submission: Submission<'a>) -> BoxFuture<'a, Result<Receipt>> {
        Box::pin(async move {
            let (token, _) = self.timestamp(submission.note.as_bytes()).await?;
            Ok(Receipt {
                anchor: KIND.into(),
                target: self.target().into(),
                body: STANDARD.encode(token),
                created_at: cortex_core::ledger::entry::now_timestamp(),
            })
        })
    }

    fn verify_receipt(&self, note: &str, receipt: &Receipt) -> Result<()> {
        if receipt.anchor != KIND {
            return Err(Error::integrity(format!(
                "receipt is from a {:?} anchor, not {KIND}",
                receipt.anchor
            )));
        }
        self.verify_body(note.as_bytes(), &receipt.body).map(|_| ())
    }
}
