//! The SSHSIG bytes CORTEX writes are exactly those docs/FORMATS.md §17.2 describes: this test
//! re-implements the check from that description alone (armor, blob fields, signed data) with
//! base64, SHA-512 and Ed25519 primitives, without the `ssh-key` crate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cortex_core::Signer;
use cortex_ssh::{SshKeyType, SshSigner};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha512};

/// Reads SSH wire-format fields (RFC 4251 §5) from a byte slice.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    fn uint32(&mut self) -> u32 {
        u32::from_be_bytes(self.bytes(4).try_into().unwrap())
    }
    fn string(&mut self) -> &'a [u8] {
        let n = self.uint32() as usize;
        self.bytes(n)
    }
}

fn ssh_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// Checks an armored Ed25519 SSHSIG over `message` by the key whose raw 32 bytes are in the
/// `.pub` line, as an auditor following the draft doc would; returns the namespace.
fn verify_as_documented(
    armored: &str,
    public_key_line: &str,
    message: &[u8],
) -> Result<String, String> {
    let inner = armored
        .strip_prefix("-----BEGIN SSH SIGNATURE-----\n")
        .and_then(|s| s.strip_suffix("-----END SSH SIGNATURE-----\n"))
        .ok_or("armor")?;
    let blob = B64
        .decode(inner.replace('\n', ""))
        .map_err(|e| e.to_string())?;
    let mut w = Wire(&blob);
    if w.bytes(6) != b"SSHSIG" || w.uint32() != 1 {
        return Err("magic or version".into());
    }
    let public_blob = w.string().to_vec();
    let namespace = w.string().to_vec();
    let reserved = w.string().to_vec();
    let hash_alg = w.string().to_vec();
    let sig_blob = w.string().to_vec();
    if !w.0.is_empty() || !reserved.is_empty() || hash_alg != b"sha512" {
        return Err("trailing bytes, reserved or hash".into());
    }
    // The public key blob is the base64 field of the .pub line.
    let pub_b64 = public_key_line.split(' ').nth(1).unwrap();
    if B64.decode(pub_b64).unwrap() != public_blob {
        return Err("another key".into());
    }
    let mut k = Wire(&public_blob);
    assert_eq!(k.string(), b"ssh-ed25519");
    let key = VerifyingKey::from_bytes(k.string().try_into().unwrap()).unwrap();
    let mut s = Wire(&sig_blob);
    assert_eq!(s.string(), b"ssh-ed25519");
    let sig = Signature::from_slice(s.string()).unwrap();

    let mut signed = b"SSHSIG".to_vec();
    ssh_string(&mut signed, &namespace);
    ssh_string(&mut signed, b"");
    ssh_string(&mut signed, b"sha512");
    ssh_string(&mut signed, &Sha512::digest(message));
    key.verify_strict(&signed, &sig)
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8(namespace).unwrap())
}

#[test]
fn the_blob_and_signed_data_are_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let signer =
        SshSigner::generate(&dir.path().join("id"), SshKeyType::Ed25519, "doc", false).unwrap();
    let body = b"example.com/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    let armored = String::from_utf8(signer.sign(body).unwrap()).unwrap();
    assert_eq!(
        verify_as_documented(&armored, signer.public_key_line(), body).unwrap(),
        "cortex-checkpoint"
    );
    assert!(verify_as_documented(&armored, signer.public_key_line(), b"other text\n").is_err());
}
