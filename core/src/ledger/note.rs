//! C2SP signed notes (`c2sp.org/signed-note`) and verifier-key text forms.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then one or more signature lines
//! `— <key name> <base64(key ID ‖ signature)>`. The key ID is the first four bytes of
//! `SHA-256(key name ‖ 0x0A ‖ algorithm byte ‖ public key)`.

use crate::error::{Error, Result};
use crate::ledger::signer::Verifier;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// The prefix of every signature line: an em dash (U+2014) and a space.
pub const SIG_LINE_PREFIX: &str = "\u{2014} ";
/// Most signatures a note may carry (as in golang.org/x/mod/sumdb/note).
pub const MAX_SIGNATURES: usize = 100;

/// Signature algorithm byte of an Ed25519 signed-note key.
pub const ALG_ED25519: u8 = 0x01;
/// Signature algorithm byte of a `cosignature/v1` witness key (Ed25519 over a timestamped body).
pub const ALG_COSIGNATURE_V1: u8 = 0x04;

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name (for a checkpoint's log signature, the origin).
    pub name: String,
    /// First four bytes of the key hash.
    pub key_id: [u8; 4],
    /// The signature bytes after the key ID.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line, with its trailing newline.
    pub fn to_line(&self) -> String {
        let mut raw = self.key_id.to_vec();
        raw.extend_from_slice(&self.signature);
        format!("{SIG_LINE_PREFIX}{} {}\n", self.name, B64.encode(raw))
    }
}

/// A parsed signed note: the signed text and its signatures, unverified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The signed text, ending in a newline (the blank line is not part of it).
    pub text: String,
    /// Signatures in file order.
    pub signatures: Vec<NoteSignature>,
}

fn malformed(why: impl std::fmt::Display) -> Error {
    Error::invalid(format!("malformed note: {why}"))
}

/// Checks a key name: non-empty, no whitespace or `+`, UTF-8.
pub fn validate_key_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("key name is empty"));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(Error::invalid(format!(
            "key name {name:?} contains a space, a control character or '+'"
        )));
    }
    Ok(())
}

impl SignedNote {
    /// A note of `text` (which must end in a newline) with no signatures yet.
    pub fn new(text: impl Into<String>) -> Result<SignedNote> {
        let text = text.into();
        check_text(&text)?;
        Ok(SignedNote {
            text,
            signatures: Vec::new(),
        })
    }

    /// Parses a note, enforcing the C2SP grammar. Signatures are not checked here.
    pub fn parse(bytes: &[u8]) -> Result<SignedNote> {
        let s = std::str::from_utf8(bytes).map_err(|_| malformed("not valid UTF-8"))?;
        if s.chars().any(|c| c < '\u{20}' && c != '\n') {
            return Err(malformed("contains a control character other than newline"));
        }
        let split = s
            .rfind("\n\n")
            .ok_or_else(|| malformed("no blank line before signatures"))?;
        let text = &s[..split + 1];
        let sigs = &s[split + 2..];
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(malformed(
                "signature block is empty or lacks a final newline",
            ));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            signatures.push(parse_signature_line(line)?);
            if signatures.len() > MAX_SIGNATURES {
                return Err(malformed(format!("more than {MAX_SIGNATURES} signatures")));
            }
        }
        check_text(text)?;
        Ok(SignedNote {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The serialized note.
    pub fn to_text(&self) -> String {
        let mut s = self.text.clone();
        s.push('\n');
        for sig in &self.signatures {
            s.push_str(&sig.to_line());
        }
        s
    }

    /// Checks the signatures against `verifiers` (matched by name and key ID).
    ///
    /// Signatures by unknown keys are skipped; a signature by a known key that does not verify is
    /// an error; at least one known key must have signed. Returns the verified key names.
    pub fn verify(&self, verifiers: &[&dyn Verifier]) -> Result<Vec<String>> {
        let mut verified = Vec::new();
        for sig in &self.signatures {
            let Some(v) = verifiers
                .iter()
                .find(|v| v.key_name() == sig.name && v.note_key_id() == Some(sig.key_id))
            else {
                continue;
            };
            v.verify(self.text.as_bytes(), &sig.signature)
                .map_err(|_| {
                    Error::integrity(format!(
                        "invalid signature for key {}+{}",
                        sig.name,
                        hex::encode(sig.key_id)
                    ))
                })?;
            verified.push(sig.name.clone());
        }
        if verified.is_empty() {
            let known: Vec<String> = verifiers.iter().map(|v| v.key_name().to_owned()).collect();
            return Err(Error::integrity(format!(
                "note has no signature from a known key (known: {})",
                known.join(", ")
            )));
        }
        Ok(verified)
    }
}

fn check_text(text: &str) -> Result<()> {
    if !text.ends_with('\n') {
        return Err(malformed("text does not end in a newline"));
    }
    if text.chars().any(|c| c < '\u{20}' && c != '\n') {
        return Err(malformed(
            "text contains a control character other than newline",
        ));
    }
    Ok(())
}

fn parse_signature_line(line: &str) -> Result<NoteSignature> {
    let rest = line
        .strip_prefix(SIG_LINE_PREFIX)
        .ok_or_else(|| malformed(format!("signature line {line:?} does not start with '— '")))?;
    let (name, b64) = rest.split_once(' ').ok_or_else(|| {
        malformed(format!(
            "signature line {line:?} has no space after the name"
        ))
    })?;
    validate_key_name(name).map_err(malformed)?;
    let raw = B64
        .decode(b64)
        .map_err(|_| malformed(format!("signature of {name} is not base64")))?;
    if raw.len() < 5 {
        return Err(malformed(format!("signature of {name} is too short")));
    }
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id: raw[..4].try_into().expect("4 bytes"),
        signature: raw[4..].to_vec(),
    })
}

/// Key ID: `SHA-256(name ‖ 0x0A ‖ algorithm ‖ key)[0..4]`.
pub fn key_id(name: &str, algorithm: u8, key: &[u8]) -> [u8; 4] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([algorithm]);
    h.update(key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The bytes a `cosignature/v1` signature covers (c2sp.org/tlog-cosignature): the header line
/// `cosignature/v1`, the line `time <timestamp>` (decimal, no leading zeros), then the cosigned
/// note's whole text (the checkpoint body with its final newline, no signature lines).
pub fn cosignature_v1_message(timestamp: u64, text: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{text}").into_bytes()
}

/// A parsed verifier key `<name>+<hex key ID>+<base64(algorithm ‖ key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    /// Key name.
    pub name: String,
    /// Key ID (checked against the key material).
    pub key_id: [u8; 4],
    /// Algorithm byte.
    pub algorithm: u8,
    /// Public key bytes.
    pub key: Vec<u8>,
}

impl VerifierKey {
    /// Parses and checks a verifier key; supports Ed25519 (0x01) and cosignature/v1 (0x04).
    pub fn parse(s: &str) -> Result<VerifierKey> {
        let s = s.trim();
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::invalid(format!(
                "verifier key {s:?} must be <name>+<key id>+<base64 key>: wrong number of parts"
            )));
        };
        validate_key_name(name)?;
        if id_hex.len() != 8 {
            return Err(Error::invalid(format!(
                "verifier key ID {id_hex:?} is not 8 hex digits"
            )));
        }
        let id: [u8; 4] = hex::decode(id_hex)
            .map_err(|_| Error::invalid(format!("verifier key ID {id_hex:?} is not hex")))?
            .try_into()
            .expect("4 bytes");
        let raw = B64
            .decode(b64)
            .map_err(|_| Error::invalid(format!("verifier key {name}: invalid base64")))?;
        let (&algorithm, key) = raw
            .split_first()
            .ok_or_else(|| Error::invalid(format!("verifier key {name}: empty key")))?;
        match algorithm {
            ALG_ED25519 | ALG_COSIGNATURE_V1 if key.len() == 32 => {}
            ALG_ED25519 | ALG_COSIGNATURE_V1 => {
                return Err(Error::invalid(format!(
                    "verifier key {name}: Ed25519 key is {} bytes, not 32",
                    key.len()
                )));
            }
            other => {
                return Err(Error::unsupported_alg(name, other));
            }
        }
        if key_id(name, algorithm, key) != id {
            return Err(Error::invalid(format!(
                "verifier key {name}: key ID {id_hex} does not match the key"
            )));
        }
        Ok(VerifierKey {
            name: name.to_owned(),
            key_id: id,
            algorithm,
            key: key.to_vec(),
        })
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        let mut raw = vec![self.algorithm];
        raw.extend_from_slice(&self.key);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            B64.encode(raw)
        )
    }
}

impl Error {
    fn unsupported_alg(name: &str, alg: u8) -> Error {
        Error::new(
            crate::error::ErrorKind::Unsupported,
            format!("verifier key {name}: unknown signature algorithm 0x{alg:02x}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reserializes_the_c2sp_example() {
        let note = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        let n = SignedNote::parse(note.as_bytes()).unwrap();
        assert_eq!(n.text, "This is an example message.\n");
        assert_eq!(n.signatures[0].name, "example.com/foo");
        assert_eq!(n.to_text(), note);
        let k = VerifierKey::parse(
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        )
        .unwrap();
        assert_eq!(k.key_id, n.signatures[0].key_id);
    }

    #[test]
    fn cosignature_message_is_the_c2sp_example() {
        let body =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        assert_eq!(
            cosignature_v1_message(1679315147, body),
            format!("cosignature/v1\ntime 1679315147\n{body}").as_bytes()
        );
    }

    #[test]
    fn rejects_malformed_notes() {
        for bad in [
            "no blank line\n\u{2014} a AAAAAAAA\n",
            "text\n\n",
            "text\n\n- a AAAAAAAA\n",
            "text\r\n\n\u{2014} a AAAAAAAA\n",
            "text\n\n\u{2014} a AAAA\n",
        ] {
            assert!(SignedNote::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
