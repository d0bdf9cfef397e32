//! The keys a Rekor v2 receipt is checked against, and the check of a Rekor checkpoint: a C2SP
//! signed note signed by the log's Ed25519 key, optionally cosigned by witnesses.

use cortex_core::ledger::note::{ALG_COSIGNATURE_V1, ALG_ED25519, VerifierKey, key_id};
use cortex_core::{Checkpoint, Error, Result, SignatureScheme, SignedNote, Verifier};
use cortex_ed25519::Ed25519Verifier;
use ed25519_dalek::VerifyingKey;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the 32-byte key follows.
pub(crate) const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The raw 32-byte Ed25519 key of a DER SubjectPublicKeyInfo.
pub(crate) fn ed25519_key_of_spki(spki: &[u8]) -> Result<[u8; 32]> {
    spki.strip_prefix(&ED25519_SPKI_PREFIX[..])
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .ok_or_else(|| {
            Error::invalid(format!(
                "the public key ({} bytes of DER) is not an Ed25519 SubjectPublicKeyInfo",
                spki.len()
            ))
        })
}

/// The signed-note verifier key of a Rekor v2 log: name = the log's base URL without its scheme
/// (`https://log2025-1.rekor.sigstore.dev` → `log2025-1.rekor.sigstore.dev`), key = the Ed25519
/// key of the trusted root's DER SubjectPublicKeyInfo.
pub fn log_vkey_from_spki(base_url: &str, spki_der: &[u8]) -> Result<String> {
    let name = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest)
        .trim_end_matches('/');
    let key = ed25519_key_of_spki(spki_der)?;
    cortex_core::ledger::note::validate_key_name(name)?;
    Ok(VerifierKey {
        name: name.to_owned(),
        key_id: key_id(name, ALG_ED25519, &key),
        algorithm: ALG_ED25519,
        key: key.to_vec(),
    }
    .to_text())
}

/// A Rekor v2 log key: its note verifier and its full 32-byte checkpoint key ID (the `logId`).
#[derive(Debug)]
struct LogKey {
    verifier: Ed25519Verifier,
    full_key_id: [u8; 32],
}

/// The keys receipts are checked against: the Rekor log's Ed25519 note key(s) and, optionally,
/// witness keys whose cosignatures on the log's checkpoints are counted.
#[derive(Debug)]
pub struct RekorTrust {
    logs: Vec<LogKey>,
    witnesses: Vec<Box<dyn Verifier>>,
}

impl RekorTrust {
    /// Trust from verifier-key texts. `log_vkeys` must be Ed25519 note keys (`name+id+base64`,
    /// algorithm 0x01; [`log_vkey_from_spki`] makes one from a trusted root); `witness_vkeys`
    /// may be `cosignature/v1` (0x04) or Ed25519 note (0x01) keys.
    pub fn new(log_vkeys: &[&str], witness_vkeys: &[&str]) -> Result<RekorTrust> {
        if log_vkeys.is_empty() {
            return Err(Error::config(
                "a Rekor anchor needs the log's verifier key (none was given)",
            ));
        }
        let logs = log_vkeys
            .iter()
            .map(|v| parse_log_key(v))
            .collect::<Result<_>>()?;
        let witnesses = witness_vkeys
            .iter()
            .map(|v| parse_witness_key(v))
            .collect::<Result<_>>()?;
        Ok(RekorTrust { logs, witnesses })
    }

    /// Trust from text, one key per line (`#` starts a comment): `log <vkey>` or a bare vkey
    /// for a log key, `witness <vkey>` for a witness key. This is the trust material of an
    /// `anchor rekor <url> <keys>` policy line.
    pub fn from_text(text: &str) -> Result<RekorTrust> {
        let (mut logs, mut witnesses) = (Vec::new(), Vec::new());
        for line in text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
        {
            match line.split_once(char::is_whitespace) {
                _ if line.is_empty() => {}
                Some(("witness", key)) => witnesses.push(key.trim()),
                Some(("log", key)) => logs.push(key.trim()),
                None => logs.push(line),
                Some((word, _)) => {
                    return Err(Error::config(format!(
                        "Rekor trust line {line:?}: expected `log <vkey>` or `witness <vkey>`, not {word:?}"
                    )));
                }
            }
        }
        Self::new(&logs, &witnesses)
    }

    /// The log key whose full checkpoint key ID is `log_id`, if any.
    pub(crate) fn knows_log_id(&self, log_id: &[u8]) -> bool {
        self.logs.iter().any(|l| l.full_key_id[..] == *log_id)
    }
}

fn parse_log_key(text: &str) -> Result<LogKey> {
    let k = VerifierKey::parse(text)
        .map_err(|e| Error::config(format!("Rekor log key {text:?}: {}", e.message())))?;
    if k.algorithm != ALG_ED25519 {
        return Err(Error::config(format!(
            "Rekor log key {}: algorithm 0x{:02x} is not an Ed25519 note key (0x01); Rekor v2 \
             logs sign checkpoints with Ed25519",
            k.name, k.algorithm
        )));
    }
    let full_key_id = full_key_id(&k.name, ALG_ED25519, &k.key);
    Ok(LogKey {
        verifier: Ed25519Verifier::from_vkey(text)?,
        full_key_id,
    })
}

/// `SHA-256(name ‖ 0x0A ‖ algorithm ‖ key)`, all 32 bytes (Rekor v2's `logId.keyId`).
fn full_key_id(name: &str, algorithm: u8, key: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([algorithm]);
    h.update(key);
    h.finalize().into()
}

fn parse_witness_key(text: &str) -> Result<Box<dyn Verifier>> {
    let k = VerifierKey::parse(text)
        .map_err(|e| Error::config(format!("witness key {text:?}: {}", e.message())))?;
    match k.algorithm {
        ALG_ED25519 => Ok(Box::new(Ed25519Verifier::from_vkey(text)?)),
        _ => Ok(Box::new(CosignatureVerifier::new(k)?)),
    }
}

/// A `c2sp.org/tlog-cosignature` (`cosignature/v1`) witness key. Its signature bytes (after the
/// key ID) are an 8-byte big-endian timestamp and an Ed25519 signature over
/// `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint text.
#[derive(Debug)]
struct CosignatureVerifier {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl CosignatureVerifier {
    fn new(k: VerifierKey) -> Result<Self> {
        debug_assert_eq!(k.algorithm, ALG_COSIGNATURE_V1);
        let bytes: [u8; 32] = k.key.as_slice().try_into().expect("checked by parse");
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
            Error::config(format!("witness key {}: not a valid Ed25519 point", k.name))
        })?;
        Ok(CosignatureVerifier {
            name: k.name,
            key_id: k.key_id,
            key,
        })
    }
}

impl Verifier for CosignatureVerifier {
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
        let bad = || Error::integrity(format!("invalid cosignature/v1 by {}", self.name));
        if signature.len() != 8 + 64 {
            return Err(bad());
        }
        let (time, sig) = signature.split_at(8);
        let time = u64::from_be_bytes(time.try_into().expect("8 bytes"));
        let mut signed = format!("cosignature/v1\ntime {time}\n").into_bytes();
        signed.extend_from_slice(message);
        let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| bad())?;
        // RFC 8032 verification, as Go's crypto/ed25519 (which witnesses use) does it.
        ed25519_dalek::Verifier::verify(&self.key, &signed, &sig).map_err(|_| bad())
    }
}

/// A Rekor checkpoint whose log signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// The checkpoint body (origin = the log key's name, size, root).
    pub checkpoint: Checkpoint,
    /// Names of the configured witnesses whose signatures verified, in note order.
    pub witnesses: Vec<String>,
}

/// Checks a Rekor checkpoint (a C2SP signed note): a signature line by a configured log key
/// verifies, the origin is that key's name, and the body parses. Signature lines by unknown keys
/// are ignored (a same-name line with another key ID is another key); a line by a configured log
/// or witness key that does not verify rejects the checkpoint.
pub fn verify_checkpoint(note: &str, trust: &RekorTrust) -> Result<VerifiedCheckpoint> {
    let parsed = SignedNote::parse(note.as_bytes())
        .map_err(|e| Error::integrity(format!("Rekor checkpoint: {}", e.message())))?;
    let log_verifiers: Vec<&dyn Verifier> = trust
        .logs
        .iter()
        .map(|l| &l.verifier as &dyn Verifier)
        .collect();
    let signed_by = parsed
        .verify(&log_verifiers)
        .map_err(|e| Error::integrity(format!("Rekor checkpoint: {}", e.message())))?;
    let checkpoint = Checkpoint::parse(&parsed.text)
        .map_err(|e| Error::integrity(format!("Rekor checkpoint: {}", e.message())))?;
    if !signed_by.contains(&checkpoint.origin) {
        return Err(Error::integrity(format!(
            "Rekor checkpoint: origin {:?} is not the name of the log key that signed it ({})",
            checkpoint.origin,
            signed_by.join(", ")
        )));
    }
    let witnesses = verify_witnesses(&parsed, trust)?;
    Ok(VerifiedCheckpoint {
        checkpoint,
        witnesses,
    })
}

/// Verifies every signature line made by a configured witness key; returns their names.
fn verify_witnesses(note: &SignedNote, trust: &RekorTrust) -> Result<Vec<String>> {
    let mut verified = Vec::new();
    for sig in &note.signatures {
        let Some(w) = trust
            .witnesses
            .iter()
            .find(|w| w.key_name() == sig.name && w.note_key_id() == Some(sig.key_id))
        else {
            continue;
        };
        w.verify(note.text.as_bytes(), &sig.signature)
            .map_err(|_| {
                Error::integrity(format!(
                    "Rekor checkpoint: the cosignature of witness {}+{} does not verify",
                    sig.name,
                    hex::encode(sig.key_id)
                ))
            })?;
        verified.push(sig.name.clone());
    }
    Ok(verified)
}
