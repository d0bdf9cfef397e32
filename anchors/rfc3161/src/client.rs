//! The request side of RFC 3161 over HTTP (RFC 3161 §3.4): a DER `TimeStampReq` POSTed with
//! `Content-Type: application/timestamp-query`, the DER `TimeStampResp` read back.

use crate::asn1::{MessageImprint, TimeStampReq};
use crate::crypto::DigestAlg;
use crate::token::Timestamp;
use cortex_core::{Error, ErrorKind, Result};
use der::Encode;
use der::asn1::OctetString;
use std::time::Duration;

/// Largest response read from a TSA; real ones are a few kilobytes.
const MAX_RESPONSE: usize = 1 << 20;

/// A DER `TimeStampReq` for the SHA-256 of a message, with the random nonce it carries.
pub(crate) struct TimestampRequest {
    pub der: Vec<u8>,
    nonce: u64,
}

impl TimestampRequest {
    /// Version 1, SHA-256 imprint, a random positive 63-bit nonce, `certReq` TRUE.
    pub(crate) fn new(message: &[u8]) -> Result<Self> {
        let nonce = random_nonce()?;
        let request = TimeStampReq {
            version: 1,
            message_imprint: MessageImprint {
                hash_algorithm: DigestAlg::sha256_identifier(),
                hashed_message: OctetString::new(DigestAlg::Sha256.digest(message))
                    .map_err(|e| Error::invalid(format!("cannot build the imprint: {e}")))?,
            },
            nonce: Some(nonce),
            cert_req: true,
        };
        let der = request
            .to_der()
            .map_err(|e| Error::invalid(format!("cannot encode the TimeStampReq: {e}")))?;
        Ok(TimestampRequest { der, nonce })
    }

    /// The token must echo this request's nonce (RFC 3161 §2.4.2), which proves it is fresh.
    pub(crate) fn check_nonce(&self, timestamp: &Timestamp) -> Result<()> {
        let expected = self
            .nonce
            .to_der()
            .map_err(|e| Error::invalid(format!("cannot encode the nonce: {e}")))?;
        match &timestamp.nonce {
            Some(got) if expected.get(2..) == Some(got.as_slice()) => Ok(()),
            Some(_) => Err(Error::integrity(
                "TSA token carries another nonce than the request's (a replayed or mixed-up reply)",
            )),
            None => Err(Error::integrity("TSA token carries no nonce")),
        }
    }
}

fn random_nonce() -> Result<u64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("no randomness for the nonce: {e}"),
        )
    })?;
    Ok(u64::from_be_bytes(bytes) >> 1)
}

/// An HTTP client for one TSA URL.
#[derive(Debug)]
pub(crate) struct TsaClient {
    url: String,
    http: reqwest::Client,
}

impl TsaClient {
    /// Checks the URL (`http://`, or `https://` with the `https` feature) and builds a client
    /// whose every request ends within `timeout`.
    pub(crate) fn new(url: &str, timeout: Duration) -> Result<Self> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| Error::config(format!("RFC 3161 TSA URL {url:?} is not a URL: {e}")))?;
        match parsed.scheme() {
            "http" => {}
            "https" if cfg!(feature = "https") => {}
            "https" => {
                return Err(Error::config(format!(
                    "RFC 3161 TSA URL {url:?}: https is not built in (cortex-rfc3161 was built \
                     without its `https` feature); tokens are signed, so the TSA's http:// \
                     endpoint is safe to use"
                )));
            }
            other => {
                return Err(Error::config(format!(
                    "RFC 3161 TSA URL {url:?} has scheme {other:?}; expected http or https"
                )));
            }
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| Error::config("cannot build the HTTP client").with_source(e))?;
        Ok(TsaClient {
            url: url.to_owned(),
            http,
        })
    }

    /// The TSA URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// POSTs a DER request and returns the DER response body.
    pub(crate) async fn post(&self, request: &[u8]) -> Result<Vec<u8>> {
        let mut response = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/timestamp-query")
            .body(request.to_vec())
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("TSA answered HTTP {status}"),
            )
            .with_context("tsa", &self.url));
        }
        if !status.is_success() {
            return Err(Error::invalid(format!("TSA answered HTTP {status}"))
                .with_context("tsa", &self.url));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.unreachable(e))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_RESPONSE {
                return Err(Error::integrity(format!(
                    "TSA response is larger than {MAX_RESPONSE} bytes"
                ))
                .with_context("tsa", &self.url));
            }
        }
        Ok(body)
    }

    fn unreachable(&self, e: reqwest::Error) -> Error {
        let what = if e.is_timeout() {
            "TSA did not answer in time"
        } else if e.is_connect() {
            "TSA is unreachable"
        } else {
            "TSA request failed"
        };
        Error::new(ErrorKind::Unavailable, what)
            .with_context("tsa", &self.url)
            .with_source(e)
    }
}
