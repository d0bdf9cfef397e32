//! What a verifier trusts: CA certificates (trust anchors) and, optionally, the TSA's own
//! certificate(s) pinned, for tokens that do not embed them and to refuse any other signer.

use cortex_core::{Error, Result};
use der::Decode;
use std::fmt;
use std::path::Path;
use x509_cert::Certificate;

/// Trust anchors and pinned TSA certificates for checking timestamp tokens.
#[derive(Clone)]
pub struct TrustStore {
    pub(crate) roots: Vec<Certificate>,
    pub(crate) pinned: Vec<Certificate>,
    pub(crate) intermediates: Vec<Certificate>,
}

impl TrustStore {
    /// Trust anchors from `roots` (PEM with one or more `CERTIFICATE` blocks, or one DER
    /// certificate). Tokens must embed their signer's certificate.
    pub fn new(roots: &[u8]) -> Result<Self> {
        let roots = parse_certificates(roots, "trust anchor")?;
        Ok(TrustStore {
            roots,
            pinned: Vec::new(),
            intermediates: Vec::new(),
        })
    }

    /// Trust anchors read from PEM or DER files.
    pub fn from_files(paths: &[impl AsRef<Path>]) -> Result<Self> {
        if paths.is_empty() {
            return Err(Error::config(
                "RFC 3161 anchor needs at least one trust anchor (CA certificate file)",
            ));
        }
        let mut roots = Vec::new();
        for path in paths {
            roots.extend(read_certificates(path.as_ref(), "trust anchor")?);
        }
        Ok(TrustStore {
            roots,
            pinned: Vec::new(),
            intermediates: Vec::new(),
        })
    }

    /// Pins the TSA certificate, optionally followed by its intermediate CAs (PEM or DER):
    /// the token's signer must then be one of these certificates, and a token embedding any
    /// other end-entity certificate is refused.
    pub fn with_pinned(mut self, tsa_chain: &[u8]) -> Result<Self> {
        self.pinned
            .extend(parse_certificates(tsa_chain, "pinned TSA certificate")?);
        Ok(self)
    }

    /// [`TrustStore::with_pinned`] from a PEM or DER file.
    pub fn with_pinned_file(mut self, path: impl AsRef<Path>) -> Result<Self> {
        self.pinned
            .extend(read_certificates(path.as_ref(), "pinned TSA certificate")?);
        Ok(self)
    }
}

impl TrustStore {
    /// Adds intermediate CA certificates (PEM or DER) that may link a TSA certificate to a
    /// trust anchor without being trusted themselves, like `openssl ts -verify -untrusted`.
    pub fn with_intermediates(mut self, certs: &[u8]) -> Result<Self> {
        self.intermediates
            .extend(parse_certificates(certs, "intermediate CA certificate")?);
        Ok(self)
    }
}

impl fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subjects = |certs: &[Certificate]| -> Vec<String> {
            certs
                .iter()
                .map(|c| c.tbs_certificate().subject().to_string())
                .collect()
        };
        f.debug_struct("TrustStore")
            .field("roots", &subjects(&self.roots))
            .field("pinned", &subjects(&self.pinned))
            .field("intermediates", &subjects(&self.intermediates))
            .finish()
    }
}

fn read_certificates(path: &Path, what: &str) -> Result<Vec<Certificate>> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::config(format!("cannot read {what} file {}", path.display())).with_source(e)
    })?;
    parse_certificates(&bytes, what)
        .map_err(|e| Error::config(format!("{}: {}", path.display(), e.message())))
}

/// One or more certificates: PEM blocks, or a single DER certificate.
fn parse_certificates(bytes: &[u8], what: &str) -> Result<Vec<Certificate>> {
    let certs = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        Certificate::load_pem_chain(bytes)
            .map_err(|e| Error::config(format!("{what}: malformed PEM certificate: {e}")))?
    } else {
        vec![
            Certificate::from_der(bytes)
                .map_err(|e| Error::config(format!("{what}: not a PEM or DER certificate: {e}")))?,
        ]
    };
    if certs.is_empty() {
        return Err(Error::config(format!("{what}: no certificate found")));
    }
    Ok(certs)
}
