//! Keyless signing: an OIDC identity token in, a Sigstore bundle with a Fulcio certificate and a
//! Rekor entry out. The flow is `sigstore-sign`'s; this module chooses the services, bounds every
//! request in time, and checks what the services returned before handing the bundle out.

use cortex_core::{Error, ErrorKind, Result};
use sigstore_sign::crypto::{self as sigcrypto, SigningScheme};
use sigstore_sign::oidc::IdentityToken;
use sigstore_sign::reqwest;
use sigstore_sign::types::Bundle;
use sigstore_sign::types::bundle::SignatureContent;
use sigstore_sign::{SigningContext, SigningServices};
use std::time::Duration;

/// The default bound on each HTTP request to Fulcio or Rekor, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Signs messages keylessly with one Fulcio and one Rekor (v1 API).
///
/// For each message: a fresh ECDSA P-256 key pair is made in memory; Fulcio is asked for a
/// short-lived certificate binding its public key to the token's identity
/// (`POST {fulcio}/api/v2/signingCert`, with the token, the public key PEM and a proof of
/// possession: the key's signature over the token's `email` claim, or `sub` without one); the
/// message is signed; a `hashedrekord` 0.0.1 entry (SHA-256 of the message, the signature, the
/// certificate PEM) is posted to `{rekor}/api/v1/log/entries`; the bundle (v0.3: certificate,
/// `messageSignature` with `messageDigest`, the log entry with its SET and inclusion proof) is
/// returned as JSON. The private key is dropped when the call returns.
#[derive(Debug, Clone)]
pub struct KeylessSigner {
    fulcio_url: String,
    rekor_url: String,
    timeout: Duration,
}

impl KeylessSigner {
    /// A signer for these services (`http` or `https` base URLs, e.g.
    /// `https://fulcio.sigstore.dev` and `https://rekor.sigstore.dev`), each request bounded by
    /// [`DEFAULT_TIMEOUT`].
    pub fn new(fulcio_url: &str, rekor_url: &str) -> Result<Self> {
        Ok(KeylessSigner {
            fulcio_url: base_url(fulcio_url, "Fulcio")?,
            rekor_url: base_url(rekor_url, "Rekor")?,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Bounds each HTTP request (connecting, sending, reading the reply) by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Signs `message` with the identity of `oidc_token` (a JWT Fulcio accepts) and returns
    /// the bundle JSON. Before returning, checks that the certificate Fulcio issued holds the
    /// key that made the signature, so a service that answers with someone else's certificate
    /// is caught here rather than by a verifier later.
    pub async fn sign(&self, oidc_token: &str, message: &[u8]) -> Result<Vec<u8>> {
        let token = IdentityToken::from_jwt(oidc_token.trim())
            .map_err(|e| Error::invalid(format!("the OIDC identity token is unusable: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .build()
            .map_err(|e| Error::config(format!("cannot make the HTTP client: {e}")))?;
        let context = SigningContext::new(SigningServices::new(&self.fulcio_url, &self.rekor_url))
            .with_http_client(http);
        let bundle = context.signer(token).sign(message).await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "keyless signing failed (Fulcio {}, Rekor {}): {e}",
                    self.fulcio_url, self.rekor_url
                ),
            )
        })?;
        check_certificate_signed(&bundle, message)?;
        bundle
            .to_json()
            .map(String::into_bytes)
            .map_err(|e| Error::backend(format!("cannot encode the Sigstore bundle: {e}")))
    }
}

/// Signs `message` keylessly: [`KeylessSigner::new`]`(fulcio_url, rekor_url)` then
/// [`KeylessSigner::sign`]`(oidc_token, message)`.
pub async fn sign_keyless(
    fulcio_url: &str,
    rekor_url: &str,
    oidc_token: &str,
    message: &[u8],
) -> Result<Vec<u8>> {
    KeylessSigner::new(fulcio_url, rekor_url)?
        .sign(oidc_token, message)
        .await
}

/// A service base URL without a trailing slash; `http` or `https` only.
fn base_url(url: &str, service: &str) -> Result<String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::config(format!("the {service} URL {url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::config(format!(
            "the {service} URL {url:?} must be an http:// or https:// URL with a host"
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// The bundle's signature verifies over `message` with its certificate's public key.
fn check_certificate_signed(bundle: &Bundle, message: &[u8]) -> Result<()> {
    let wrong = |why: String| {
        Error::integrity(format!(
            "Fulcio's reply cannot be used for this signature: {why}"
        ))
    };
    let cert = bundle
        .signing_certificate()
        .ok_or_else(|| wrong("the bundle has no certificate".into()))?;
    let info = sigcrypto::parse_certificate_info(cert)
        .map_err(|e| wrong(format!("the certificate does not parse ({e})")))?;
    let SignatureContent::MessageSignature(signed) = &bundle.content else {
        return Err(wrong("the bundle holds no messageSignature".into()));
    };
    sigcrypto::verify_signature(
        &info.public_key,
        message,
        &signed.signature,
        SigningScheme::EcdsaP256Sha256,
    )
    .map_err(|_| wrong("the certificate holds another public key than the one that signed".into()))
}
