//! Salted commitments to a fact's erasable fields: how a fact can be forgotten while every
//! proof and checkpoint over the ledger stays valid.
//!
//! A `fact.store` entry does not hold the fact's content, tags or source. It holds
//! `commitment = H(0x03 ‖ salt ‖ fields)` (the ledger's hash function, a fresh 32-byte random
//! salt, the fields length-prefixed; see [`commit`]), and the content with its salt is stored
//! *beside* the entry as a [`FactOpening`]. Anyone holding the opening checks it against the
//! signed entry; forgetting a fact deletes the opening and appends a `fact.erase` entry, so the
//! entry bytes, and with them every leaf, root, proof and signature, never change. The salt
//! keeps a short content (a name, a yes/no) from being found by hashing guesses.

use crate::error::{Error, Result};
use crate::ledger::hash::{Hash, Hasher};
use serde::{Deserialize, Serialize};

/// Domain tag of a commitment (leaf, node and chain hashes use 0x00, 0x01 and 0x02).
pub const COMMIT_PREFIX: u8 = 0x03;
/// Salt length in bytes.
pub const SALT_LEN: usize = 32;

/// The erasable fields of a fact: what a commitment covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactContent {
    /// The text.
    pub content: String,
    /// Tags, in order.
    pub tags: Vec<String>,
    /// Source, if any.
    pub source: Option<String>,
}

/// A fact's erasable fields and the salt of its commitment, stored beside its `fact.store`
/// entry (and carried in exports) until the fact is forgotten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactOpening {
    /// The fact (the index of its `fact.store` entry).
    pub fact_id: u64,
    /// The salt, 64 lowercase hex digits.
    pub salt: String,
    /// The fields.
    #[serde(flatten)]
    pub fields: FactContent,
}

impl FactOpening {
    /// True if this opening opens `commitment` (hex, as in the entry) under `hasher`.
    pub fn opens(&self, hasher: &dyn Hasher, commitment: &str) -> bool {
        let Ok(salt) = decode_salt(&self.salt) else {
            return false;
        };
        Hash::from_hex(commitment).is_ok_and(|c| commit(hasher, &salt, &self.fields) == c)
    }
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
    let v = hex::decode(hex_salt)
        .ok()
        .filter(|v| v.len() == SALT_LEN)
        .ok_or_else(|| Error::invalid(format!("salt {hex_salt:?} is not 64 hex digits")))?;
    Ok(v.try_into().expect("32 bytes"))
}

/// `H(0x03 ‖ salt ‖ LP(content) ‖ u32be(tag count) ‖ LP(tag)… ‖ source)`, where `LP(x)` is
/// `x`'s UTF-8 length as a big-endian u32 followed by its bytes, and `source` is the byte 0x00
/// when there is none or 0x01 followed by `LP(source)`.
pub fn commit(hasher: &dyn Hasher, salt: &[u8; SALT_LEN], f: &FactContent) -> Hash {
    let mut b = Vec::with_capacity(64 + f.content.len());
    b.push(COMMIT_PREFIX);
    b.extend_from_slice(salt);
    lp(&mut b, &f.content);
    b.extend_from_slice(&(f.tags.len() as u32).to_be_bytes());
    for t in &f.tags {
        lp(&mut b, t);
    }
    match &f.source {
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

/// Seals `fields` for fact `fact_id`: a fresh salt, the opening to store, and the commitment's
/// hex for the entry.
pub fn seal(
    hasher: &dyn Hasher,
    fact_id: u64,
    fields: FactContent,
) -> Result<(FactOpening, String)> {
    let salt = new_salt()?;
    let c = commit(hasher, &salt, &fields);
    Ok((
        FactOpening {
            fact_id,
            salt: hex::encode(salt),
            fields,
        },
        c.to_hex(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::hash::HashAlgorithm;

    fn fields() -> FactContent {
        FactContent {
            content: "The sky is blue".into(),
            tags: vec!["a".into(), "b".into()],
            source: Some("https://example.org".into()),
        }
    }

    #[test]
    fn the_commitment_bytes_are_as_documented() {
        // FORMATS.md's worked example: salt 00 01 … 1f.
        let salt: [u8; 32] = std::array::from_fn(|i| i as u8);
        let h = HashAlgorithm::Sha256.hasher();
        let mut manual = vec![0x03];
        manual.extend_from_slice(&salt);
        manual.extend_from_slice(&15u32.to_be_bytes());
        manual.extend_from_slice(b"The sky is blue");
        manual.extend_from_slice(&2u32.to_be_bytes());
        manual.extend_from_slice(&1u32.to_be_bytes());
        manual.extend_from_slice(b"a");
        manual.extend_from_slice(&1u32.to_be_bytes());
        manual.extend_from_slice(b"b");
        manual.push(1);
        manual.extend_from_slice(&19u32.to_be_bytes());
        manual.extend_from_slice(b"https://example.org");
        assert_eq!(commit(&*h, &salt, &fields()), h.digest(&[&manual]));
        // The value printed in FORMATS.md §15.2, computed independently (Python hashlib).
        assert_eq!(
            commit(&*h, &salt, &fields()).to_hex(),
            "70da30cf557c1ec81c2d81a337f91d153a8719d8f097fb4d411ec30d89e820ef"
        );
        let bare = FactContent {
            content: "The sky is blue".into(),
            ..FactContent::default()
        };
        assert_eq!(
            commit(&*h, &salt, &bare).to_hex(),
            "d1cf4207a7300f5d6c6d8a583f5a9bfc2471876eb8de3f9ea220b6deaa0f90dd"
        );
    }

    #[test]
    fn an_opening_opens_only_its_own_commitment() {
        let h = HashAlgorithm::Sha256.hasher();
        let (o, c) = seal(&*h, 7, fields()).unwrap();
        assert!(o.opens(&*h, &c));
        let mut other = o.clone();
        other.fields.content.push('!');
        assert!(!other.opens(&*h, &c));
        let mut moved = o.clone();
        moved.fields.tags.swap(0, 1);
        assert!(!moved.opens(&*h, &c));
        let mut no_source = o.clone();
        no_source.fields.source = None;
        assert!(!no_source.opens(&*h, &c));
        let mut salted = o.clone();
        salted.salt = hex::encode([9u8; 32]);
        assert!(!salted.opens(&*h, &c));
        assert!(!o.opens(&*HashAlgorithm::Blake3.hasher(), &c));
        let (o2, c2) = seal(&*h, 7, fields()).unwrap();
        assert_ne!(o2.salt, o.salt, "fresh salt per seal");
        assert_ne!(c2, c);
    }
}
