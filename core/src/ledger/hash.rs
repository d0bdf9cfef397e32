//! Leaf hashers: SHA-256 (the default, the only one C2SP tools accept) and BLAKE3.
//!
//! A hasher is a small, sync, object-safe primitive that reports its algorithm, in the manner of
//! rustls' crypto providers. All three domain-separated hash rules of the ledger live here, so no
//! other code ever concatenates prefixes by hand.

use crate::error::{Error, Result};
use std::fmt;
use std::sync::Arc;

/// Length of every hash in the ledger, for both algorithms.
pub const HASH_LEN: usize = 32;

/// A 32-byte hash value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_LEN]);

impl Hash {
    /// The all-zero hash: the `prev_hash` of entry 0.
    pub const ZERO: Hash = Hash([0u8; HASH_LEN]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }
    /// Lowercase hex, as used in exports and the database.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Standard base64 (RFC 4648 §4), as used in checkpoints and proofs.
    pub fn to_base64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }
    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Hash> {
        let mut h = [0u8; HASH_LEN];
        // Into the array, no allocation: verify decodes one or two of these per fact.
        hex::decode_to_slice(s, &mut h).map_err(|e| match e {
            hex::FromHexError::InvalidStringLength => {
                Error::invalid(format!("hash {s:?} is not 32 bytes"))
            }
            e => Error::invalid(format!("hash {s:?} is not hex: {e}")),
        })?;
        Ok(Hash(h))
    }
    /// Parses standard base64 of exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<Hash> {
        use base64::Engine;
        let v = base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| Error::invalid(format!("hash {s:?} is not base64: {e}")))?;
        Hash::from_slice(&v).map_err(|_| Error::invalid(format!("hash {s:?} is not 32 bytes")))
    }
    /// Copies exactly 32 bytes.
    pub fn from_slice(b: &[u8]) -> Result<Hash> {
        let arr: [u8; HASH_LEN] = b
            .try_into()
            .map_err(|_| Error::invalid(format!("hash must be 32 bytes, got {}", b.len())))?;
        Ok(Hash(arr))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The hash algorithm of a ledger. It is fixed when the ledger is created and bound into the
/// checkpoint origin, so roots of different algorithms can never be confused.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-256 (FIPS 180-4). The default; what RFC 6962 and C2SP tooling expect.
    Sha256,
    /// BLAKE3 with its default 32-byte output.
    Blake3,
}

impl HashAlgorithm {
    /// The names accepted by [`HashAlgorithm::parse`].
    pub const NAMES: &'static [&'static str] = &["sha256", "blake3"];

    /// The stable name (`sha256`, `blake3`).
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Blake3 => "blake3",
        }
    }
    /// Parses a name; an unknown one lists the available names.
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "sha256" | "sha-256" => Ok(HashAlgorithm::Sha256),
            "blake3" => Ok(HashAlgorithm::Blake3),
            _ => Err(Error::config(format!(
                "unknown hasher {name:?}; available: {}",
                Self::NAMES.join(", ")
            ))),
        }
    }
    /// A hasher for this algorithm.
    pub fn hasher(self) -> Arc<dyn Hasher> {
        match self {
            HashAlgorithm::Sha256 => Arc::new(Sha256Hasher),
            HashAlgorithm::Blake3 => Arc::new(Blake3Hasher),
        }
    }
}

/// Domain tag of a Merkle leaf (RFC 6962 §2.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Domain tag of a Merkle interior node (RFC 6962 §2.1).
pub const NODE_PREFIX: u8 = 0x01;
/// Domain tag of a hash-chain link (CORTEX; distinct from both Merkle tags).
pub const CHAIN_PREFIX: u8 = 0x02;

/// A hash function with the three domain-separated rules of the ledger.
pub trait Hasher: Send + Sync + fmt::Debug {
    /// Which algorithm this is.
    fn algorithm(&self) -> HashAlgorithm;
    /// `H(parts[0] ‖ parts[1] ‖ …)`.
    fn digest(&self, parts: &[&[u8]]) -> Hash;

    /// Merkle leaf hash: `H(0x00 ‖ entry_bytes)`.
    fn leaf(&self, entry_bytes: &[u8]) -> Hash {
        self.digest(&[&[LEAF_PREFIX], entry_bytes])
    }
    /// `H(buf)`, where the hasher may use `buf`'s spare capacity as scratch space (its contents
    /// past the original length are unspecified afterwards). Lets hot loops hash without copies.
    fn digest_buf(&self, buf: &mut Vec<u8>) -> Hash {
        self.digest(&[buf])
    }
    /// Merkle interior node: `H(0x01 ‖ left ‖ right)`.
    fn node(&self, left: &Hash, right: &Hash) -> Hash {
        self.digest(&[&[NODE_PREFIX], &left.0, &right.0])
    }
    /// Hash-chain link: `H(0x02 ‖ prev_hash ‖ leaf_hash)`.
    fn chain(&self, prev: &Hash, leaf: &Hash) -> Hash {
        self.digest(&[&[CHAIN_PREFIX], &prev.0, &leaf.0])
    }
    /// Root of the empty tree: `H("")`.
    fn empty_root(&self) -> Hash {
        self.digest(&[])
    }
}

/// SHA-256 hasher (uses SHA-NI when the CPU has it).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sha256Hasher;

impl Hasher for Sha256Hasher {
    fn algorithm(&self) -> HashAlgorithm {
        HashAlgorithm::Sha256
    }
    fn digest(&self, parts: &[&[u8]]) -> Hash {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for p in parts {
            h.update(p);
        }
        Hash(h.finalize().into())
    }
    fn digest_buf(&self, buf: &mut Vec<u8>) -> Hash {
        sha256_pad_and_compress(buf)
    }
    // Nodes and chain links are 65 bytes: two blocks, padded on the stack, with no buffering.
    fn node(&self, left: &Hash, right: &Hash) -> Hash {
        sha256_65(NODE_PREFIX, left, right)
    }
    fn chain(&self, prev: &Hash, leaf: &Hash) -> Hash {
        sha256_65(CHAIN_PREFIX, prev, leaf)
    }
}

const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

fn sha256_state_to_hash(state: [u32; 8]) -> Hash {
    let mut out = [0u8; HASH_LEN];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    Hash(out)
}

/// SHA-256 of `prefix ‖ a ‖ b` (65 bytes) straight through the compression function.
fn sha256_65(prefix: u8, a: &Hash, b: &Hash) -> Hash {
    let mut blocks = [[0u8; 64]; 2];
    blocks[0][0] = prefix;
    blocks[0][1..33].copy_from_slice(&a.0);
    blocks[0][33..64].copy_from_slice(&b.0[..31]);
    blocks[1][0] = b.0[31];
    blocks[1][1] = 0x80;
    blocks[1][56..64].copy_from_slice(&(65u64 * 8).to_be_bytes());
    let mut state = SHA256_IV;
    sha2::block_api::compress256(&mut state, &blocks);
    sha256_state_to_hash(state)
}

/// SHA-256 of `buf`, padding in place (FIPS 180-4 §5.1.1) and compressing all blocks at once.
fn sha256_pad_and_compress(buf: &mut Vec<u8>) -> Hash {
    let len = buf.len();
    let padded = (len + 9).div_ceil(64) * 64;
    buf.resize(padded, 0);
    buf[len] = 0x80;
    buf[padded - 8..].copy_from_slice(&((len as u64) * 8).to_be_bytes());
    let (blocks, rest) = buf.as_chunks::<64>();
    debug_assert!(rest.is_empty());
    let mut state = SHA256_IV;
    sha2::block_api::compress256(&mut state, blocks);
    buf.truncate(len);
    sha256_state_to_hash(state)
}

/// BLAKE3 hasher (32-byte output).
#[derive(Debug, Clone, Copy, Default)]
pub struct Blake3Hasher;

impl Hasher for Blake3Hasher {
    fn algorithm(&self) -> HashAlgorithm {
        HashAlgorithm::Blake3
    }
    fn digest(&self, parts: &[&[u8]]) -> Hash {
        let mut h = blake3::Hasher::new();
        for p in parts {
            h.update(p);
        }
        Hash(*h.finalize().as_bytes())
    }
    fn digest_buf(&self, buf: &mut Vec<u8>) -> Hash {
        Hash(*blake3::hash(buf).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_roots_are_the_hash_of_nothing() {
        assert_eq!(
            Sha256Hasher.empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            Blake3Hasher.empty_root().to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn domain_tags_separate_leaf_node_and_chain() {
        let h = Sha256Hasher;
        let a = Hash([1; 32]);
        let b = Hash([2; 32]);
        let mut both = a.0.to_vec();
        both.extend_from_slice(&b.0);
        assert_ne!(h.node(&a, &b), h.chain(&a, &b));
        assert_ne!(h.node(&a, &b), h.leaf(&both));
    }

    #[test]
    fn fast_paths_equal_the_generic_digest() {
        for h in [&Sha256Hasher as &dyn Hasher, &Blake3Hasher] {
            let a = Hash([3; 32]);
            let b = Hash([9; 32]);
            assert_eq!(h.node(&a, &b), h.digest(&[&[NODE_PREFIX], &a.0, &b.0]));
            assert_eq!(h.chain(&a, &b), h.digest(&[&[CHAIN_PREFIX], &a.0, &b.0]));
            for len in 0..300 {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
                let mut buf = data.clone();
                assert_eq!(h.digest_buf(&mut buf), h.digest(&[&data]), "len {len}");
                assert_eq!(buf, data, "digest_buf must restore the buffer's length");
            }
        }
    }

    #[test]
    fn unknown_hasher_lists_available() {
        let e = HashAlgorithm::parse("md5").unwrap_err();
        assert!(e.to_string().contains("sha256, blake3"), "{e}");
    }
}
