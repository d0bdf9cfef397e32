//! Digests and signature checks: the algorithms RFC 3161 authorities use in practice (OpenSSL's
//! `ts -reply`, Sigstore's timestamp authority, commercial TSAs): RSA PKCS#1 v1.5 and ECDSA
//! P-256 / P-384 with SHA-256, SHA-384 or SHA-512.

use cortex_core::{Error, Result};
use der::Encode;
use der::asn1::ObjectIdentifier;
use sha2::Digest;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_WITH_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// A hash function named in a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DigestAlg {
    /// Only for ESSCertID (RFC 2634), whose certificate hash is SHA-1 by definition.
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlg {
    /// The SHA-2 function this identifier names (parameters absent or NULL, RFC 5754 §2);
    /// SHA-1 and others are refused.
    pub(crate) fn sha2_from_identifier(id: &AlgorithmIdentifierOwned) -> Result<Self> {
        if id.parameters.as_ref().is_some_and(|p| !p.is_null()) {
            return Err(Error::integrity(format!(
                "hash algorithm {} has parameters; it takes none",
                id.oid
            )));
        }
        match id.oid {
            ID_SHA256 => Ok(DigestAlg::Sha256),
            ID_SHA384 => Ok(DigestAlg::Sha384),
            ID_SHA512 => Ok(DigestAlg::Sha512),
            ID_SHA1 => Err(Error::integrity(
                "timestamp token uses SHA-1, which is not accepted",
            )),
            other => Err(Error::integrity(format!(
                "timestamp token uses an unsupported hash algorithm {other}"
            ))),
        }
    }

    /// The algorithm identifier of SHA-256, as CORTEX sends it in requests.
    pub(crate) fn sha256_identifier() -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: ID_SHA256,
            parameters: None,
        }
    }

    /// A short name for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DigestAlg::Sha1 => "SHA-1",
            DigestAlg::Sha256 => "SHA-256",
            DigestAlg::Sha384 => "SHA-384",
            DigestAlg::Sha512 => "SHA-512",
        }
    }

    /// The digest of `data`.
    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            DigestAlg::Sha1 => sha1::Sha1::digest(data).to_vec(),
            DigestAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            DigestAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
            DigestAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// Checks `signature` over `message` by the key in `spki`. `signature_alg` is the algorithm
/// named beside the signature; `digest_alg` is the SignerInfo's digest algorithm, used when the
/// signature algorithm names only the key type (`rsaEncryption`, `id-ecPublicKey`, as CMS
/// allows).
pub(crate) fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    signature_alg: &AlgorithmIdentifierOwned,
    digest_alg: Option<DigestAlg>,
    message: &[u8],
    signature: &[u8],
) -> Result<()> {
    let (scheme, hash) = signature_scheme(&signature_alg.oid, digest_alg)?;
    let prehash = hash.digest(message);
    match scheme {
        Scheme::Rsa => verify_rsa(spki, hash, &prehash, signature),
        Scheme::Ecdsa => verify_ecdsa(spki, &prehash, signature),
    }
}

enum Scheme {
    Rsa,
    Ecdsa,
}

fn signature_scheme(
    oid: &ObjectIdentifier,
    digest_alg: Option<DigestAlg>,
) -> Result<(Scheme, DigestAlg)> {
    let from_digest = |scheme| {
        digest_alg.map(|d| (scheme, d)).ok_or_else(|| {
            Error::integrity(format!("signature algorithm {oid} names no hash function"))
        })
    };
    match *oid {
        SHA256_WITH_RSA => Ok((Scheme::Rsa, DigestAlg::Sha256)),
        SHA384_WITH_RSA => Ok((Scheme::Rsa, DigestAlg::Sha384)),
        SHA512_WITH_RSA => Ok((Scheme::Rsa, DigestAlg::Sha512)),
        ECDSA_WITH_SHA256 => Ok((Scheme::Ecdsa, DigestAlg::Sha256)),
        ECDSA_WITH_SHA384 => Ok((Scheme::Ecdsa, DigestAlg::Sha384)),
        ECDSA_WITH_SHA512 => Ok((Scheme::Ecdsa, DigestAlg::Sha512)),
        RSA_ENCRYPTION => from_digest(Scheme::Rsa),
        ID_EC_PUBLIC_KEY => from_digest(Scheme::Ecdsa),
        other => Err(Error::integrity(format!(
            "unsupported signature algorithm {other} (RSA PKCS#1 v1.5 and ECDSA P-256/P-384 \
             with SHA-2 are supported)"
        ))),
    }
}

fn verify_rsa(
    spki: &SubjectPublicKeyInfoOwned,
    hash: DigestAlg,
    prehash: &[u8],
    signature: &[u8],
) -> Result<()> {
    use rsa::pkcs8::DecodePublicKey;
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(Error::integrity(format!(
            "an RSA signature but the certificate holds a {} key",
            spki.algorithm.oid
        )));
    }
    let spki_der = spki.to_der().map_err(bad_key)?;
    let key = rsa::PublicKey::from_public_key_der(&spki_der)
        .map_err(|e| Error::integrity(format!("malformed RSA public key: {e}")))?;
    let scheme = match hash {
        DigestAlg::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
        DigestAlg::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
        DigestAlg::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
        DigestAlg::Sha1 => return Err(Error::integrity("SHA-1 signatures are not accepted")),
    };
    key.verify(scheme, prehash, signature)
        .map_err(|_| Error::integrity("RSA signature does not verify"))
}

fn verify_ecdsa(spki: &SubjectPublicKeyInfoOwned, prehash: &[u8], signature: &[u8]) -> Result<()> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
        return Err(Error::integrity(format!(
            "an ECDSA signature but the certificate holds a {} key",
            spki.algorithm.oid
        )));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
        .ok_or_else(|| Error::integrity("EC public key names no curve"))?;
    let point = spki.subject_public_key.raw_bytes();
    let bad_signature = |_| Error::integrity("ECDSA signature does not verify");
    match curve {
        SECP256R1 => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad_key)?;
            let sig = p256::ecdsa::Signature::from_der(signature).map_err(bad_signature)?;
            key.verify_prehash(prehash, &sig).map_err(bad_signature)
        }
        SECP384R1 => {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad_key)?;
            let sig = p384::ecdsa::Signature::from_der(signature).map_err(bad_signature)?;
            key.verify_prehash(prehash, &sig).map_err(bad_signature)
        }
        other => Err(Error::integrity(format!(
            "unsupported elliptic curve {other} (P-256 and P-384 are supported)"
        ))),
    }
}

fn bad_key(e: impl std::fmt::Display) -> Error {
    Error::integrity(format!("malformed public key: {e}"))
}
