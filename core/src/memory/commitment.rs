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

use crate::error::Result;
use crate::ledger::commitment::{self as rule, SALT_LEN};
use crate::ledger::hash::{Hash, Hasher};
use serde::{Deserialize, Serialize};

pub use crate::ledger::commitment::{COMMIT_PREFIX, decode_salt, new_salt};

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
        let f = &self.fields;
        rule::opens(
            hasher,
            commitment,
            &self.salt,
            &f.content,
            &f.tags,
            f.source.as_deref(),
        )
    }
}

/// The commitment to `f` under `salt` ([`crate::ledger::commitment::commit`]).
pub fn commit(hasher: &dyn Hasher, salt: &[u8; SALT_LEN], f: &FactContent) -> Hash {
    rule::commit(hasher, salt, &f.content, &f.tags, f.source.as_deref())
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
