//! Salted commitments to content kept beside an entry: the byte rule (FORMATS.md §15.2). An
//! entry can hold `H(0x03 ‖ salt ‖ fields)` instead of the fields themselves, so the fields can
//! later be deleted while the entry's bytes, and every proof over them, stay as they were. The
//! agent memory commits to a fact's content, tags and source this way
//! ([`crate::memory::commitment`]); exports carry the openings and
//! [`verify_export`](crate::ledger::export::verify_export) checks them with this function.

use crate::error::{Error, Result};
use crate::ledger::hash::{Hash, Hasher};

/// Domain tag of a commitment (leaf, node and chain hashes use 0x00, 0x01 and 0x02).
pub const COMMIT_PREFIX: u8 = 0x03;
/// Salt length in bytes.
pub const SALT_LEN: usize = 32;

/// `H(0x03 ‖ salt ‖ LP(content) ‖ u32be(tag count) ‖ LP(tag)… ‖ source)`, where `LP(x)` is
/// `x`'s UTF-8 length as a big-endian u32 followed by its bytes, and `source` is the byte 0x00
/// when there is none or 0x01 followed by `LP(source)`.
pub fn commit(
    hasher: &dyn Hasher,
    salt: &[u8; SALT_LEN],
    content: &str,
    tags: &[String],
    source: Option<&str>,
) -> Hash {
    let mut b = Vec::with_capacity(64 + content.len());
    b.push(COMMIT_PREFIX);
    b.extend_from_slice(salt);
    lp(&mut b, content);
    b.extend_from_slice(&(tags.len() as u32).to_be_bytes());
    for t in tags {
        lp(&mut b, t);
    }
    match source {
        None => b.push(0),
        Some(s) => {
            b.push(1);
            lp(&mut b, s);
        }
    }
    hasher.digest(&[&b])
}

fn lp(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u32).to_be_bytes());
    b.extend_from_slice(s.as_bytes());
}

/// A fresh random salt from the operating system.
pub fn new_salt() -> Result<[u8; SALT_LEN]> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt)
        .map_err(|e| Error::backend(format!("no randomness for a commitment salt: {e}")))?;
    Ok(salt)
}

/// Decodes a salt from 64 hex digits.
pub fn decode_salt(hex_salt: &str) -> Result<[u8; SALT_LEN]> {
    let mut salt = [0u8; SALT_LEN];
    hex::decode_to_slice(hex_salt, &mut salt)
        .map_err(|_| Error::invalid(format!("salt {hex_salt:?} is not 64 hex digits")))?;
    Ok(salt)
}

/// True if `salt` (hex) and the fields open `commitment` (hex) under `hasher`.
pub fn opens(
    hasher: &dyn Hasher,
    commitment: &str,
    salt: &str,
    content: &str,
    tags: &[String],
    source: Option<&str>,
) -> bool {
    let Ok(salt) = decode_salt(salt) else {
        return false;
    };
    Hash::from_hex(commitment).is_ok_and(|c| commit(hasher, &salt, content, tags, source) == c)
}
