//! [`TestSigner`], the keyed-hash stand-in for an Ed25519 note signer that the tamper suite
//! (and other core tests) sign checkpoints with.

use crate::error::{Error, Result};
use crate::ledger::signer::{SignatureScheme, Signer, Verifier};
use std::sync::Arc;

/// A keyed-hash stand-in for an Ed25519 note signer, for tests of code that only stores and
/// checks signatures (core cannot depend on the signer crates). Symmetric, so **not** a
/// signature scheme: anyone holding the verifier could sign. Every [`TestSigner::generate`]
/// makes a different key; the key ID is computed as for Ed25519 keys.
#[derive(Debug, Clone)]
pub struct TestSigner {
    name: String,
    secret: [u8; 32],
    key_id: [u8; 4],
}

impl TestSigner {
    /// A new key named `name` (a valid note key name).
    pub fn generate(name: &str) -> TestSigner {
        use sha2::Digest;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let secret: [u8; 32] = sha2::Sha256::new()
            .chain_update(b"cortex test signer\n")
            .chain_update(std::process::id().to_be_bytes())
            .chain_update(n.to_be_bytes())
            .chain_update(nanos.to_be_bytes())
            .finalize()
            .into();
        TestSigner {
            name: name.to_owned(),
            key_id: crate::ledger::note::key_id(name, 0x01, &secret),
            secret,
        }
    }

    fn mac(&self, message: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        let part = |i: u8| {
            sha2::Sha256::new()
                .chain_update(self.secret)
                .chain_update([i])
                .chain_update(message)
                .finalize()
        };
        // 64 bytes, as long as an Ed25519 signature.
        [part(0).as_slice(), part(1).as_slice()].concat()
    }
}

impl Signer for TestSigner {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Ed25519Note
    }
    fn key_name(&self) -> &str {
        &self.name
    }
    fn note_key_id(&self) -> Option<[u8; 4]> {
        Some(self.key_id)
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(self.mac(message))
    }
    fn verifier(&self) -> Box<dyn Verifier> {
        Box::new(self.clone())
    }
}

impl Verifier for TestSigner {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Ed25519Note
    }
    fn key_name(&self) -> &str {
        &self.name
    }
    fn note_key_id(&self) -> Option<[u8; 4]> {
        Some(self.key_id)
    }
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        if signature == self.mac(message) {
            Ok(())
        } else {
            Err(Error::integrity("invalid test signature"))
        }
    }
}

/// [`TestSigner::generate`] as a [`NewSigner`](super::NewSigner).
pub fn test_signer(name: &str) -> Arc<dyn Signer> {
    Arc::new(TestSigner::generate(name))
}
