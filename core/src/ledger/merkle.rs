//! RFC 6962 / RFC 9162 §2.1 Merkle trees: roots, inclusion and consistency proofs.
//!
//! Pure functions. Proof *generation* reads perfect-subtree hashes through a [`NodeSource`]
//! (stored tiles in production, an in-memory list in tests); proof *verification* needs only the
//! hasher. Nothing here rebuilds a tree per proof.

use crate::error::{Error, Result};
use crate::ledger::hash::{Hash, Hasher};

/// Supplies hashes of perfect, aligned subtrees: `node(level, index)` is the root of leaves
/// `[index·2^level, (index+1)·2^level)`.
pub trait NodeSource {
    /// The hash of a complete subtree; an error if it is not available.
    fn node(&self, level: u8, index: u64) -> Result<Hash>;
}

/// Leaf hashes held in memory, for tests, exports and small trees.
#[derive(Clone, Copy)]
pub struct LeafSlice<'a> {
    /// The hasher used for interior nodes.
    pub hasher: &'a dyn Hasher,
    /// Leaf hashes, index 0 first. May start at an offset: see `first`.
    pub leaves: &'a [Hash],
}

impl NodeSource for LeafSlice<'_> {
    fn node(&self, level: u8, index: u64) -> Result<Hash> {
        let start = index
            .checked_shl(level as u32)
            .filter(|s| s >> level == index)
            .ok_or_else(|| Error::invalid("node index overflows"))?;
        let width = 1u64 << level;
        let leaves = usize::try_from(start)
            .ok()
            .and_then(|s| self.leaves.get(s..s.checked_add(width as usize)?))
            .ok_or_else(|| Error::not_found(format!("node ({level}, {index}) is not complete")))?;
        Ok(perfect_root(self.hasher, leaves))
    }
}

/// Largest power of two strictly less than `n` (`n ≥ 2`): RFC 6962's split point `k`.
pub fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Root of a perfect subtree given all its leaf-level hashes (`len` a power of two).
pub fn perfect_root(hasher: &dyn Hasher, hashes: &[Hash]) -> Hash {
    debug_assert!(hashes.len().is_power_of_two());
    if hashes.len() == 1 {
        return hashes[0];
    }
    let mut level: Vec<Hash> = hashes
        .chunks(2)
        .map(|p| hasher.node(&p[0], &p[1]))
        .collect();
    while level.len() > 1 {
        level = level.chunks(2).map(|p| hasher.node(&p[0], &p[1])).collect();
    }
    level[0]
}

/// RFC 6962 `MTH(D[a:b])` for `0 ≤ a < b`, resolving perfect aligned parts through `src`.
pub fn range_hash(src: &dyn NodeSource, hasher: &dyn Hasher, a: u64, b: u64) -> Result<Hash> {
    debug_assert!(a < b);
    let n = b - a;
    if n.is_power_of_two() && a.is_multiple_of(n) {
        return src.node(n.trailing_zeros() as u8, a >> n.trailing_zeros());
    }
    let k = split_point(n);
    let left = range_hash(src, hasher, a, a + k)?;
    let right = range_hash(src, hasher, a + k, b)?;
    Ok(hasher.node(&left, &right))
}

/// Root of the tree of the first `size` leaves.
pub fn root(src: &dyn NodeSource, hasher: &dyn Hasher, size: u64) -> Result<Hash> {
    if size == 0 {
        return Ok(hasher.empty_root());
    }
    range_hash(src, hasher, 0, size)
}

/// Root of a list of leaf hashes, computed directly (for small trees and tests).
pub fn root_from_leaves(hasher: &dyn Hasher, leaves: &[Hash]) -> Hash {
    let mut f = Frontier::new();
    for l in leaves {
        f.push(hasher, *l);
    }
    f.root(hasher)
}

/// RFC 9162 §2.1.3.1 inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_proof(
    src: &dyn NodeSource,
    hasher: &dyn Hasher,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>> {
    if index >= size {
        return Err(Error::invalid(format!(
            "index {index} is not below tree size {size}"
        )));
    }
    let mut proof = Vec::with_capacity(64);
    path(src, hasher, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path(
    src: &dyn NodeSource,
    h: &dyn Hasher,
    m: u64,
    a: u64,
    b: u64,
    out: &mut Vec<Hash>,
) -> Result<()> {
    let n = b - a;
    if n == 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path(src, h, m, a, a + k, out)?;
        out.push(range_hash(src, h, a + k, b)?);
    } else {
        path(src, h, m - k, a + k, b, out)?;
        out.push(range_hash(src, h, a, a + k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.1 consistency proof between trees of `old` and `new` leaves.
pub fn consistency_proof(
    src: &dyn NodeSource,
    hasher: &dyn Hasher,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>> {
    if old > new {
        return Err(Error::invalid(format!(
            "old size {old} is larger than new size {new}"
        )));
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let mut proof = Vec::with_capacity(64);
    subproof(src, hasher, old, 0, new, true, &mut proof)?;
    Ok(proof)
}

fn subproof(
    src: &dyn NodeSource,
    h: &dyn Hasher,
    m: u64,
    a: u64,
    b: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<()> {
    let n = b - a;
    if m == n {
        if !complete {
            out.push(range_hash(src, h, a, b)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(src, h, m, a, a + k, complete, out)?;
        out.push(range_hash(src, h, a + k, b)?);
    } else {
        subproof(src, h, m - k, a + k, b, false, out)?;
        out.push(range_hash(src, h, a, a + k)?);
    }
    Ok(())
}

fn proof_error(msg: impl Into<String>) -> Error {
    Error::integrity(msg)
}

/// RFC 9162 §2.1.3.2: checks that `leaf` is at `index` in the tree of `size` leaves with `root`.
pub fn verify_inclusion(
    hasher: &dyn Hasher,
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    if index >= size {
        return Err(proof_error(format!(
            "index {index} is not below tree size {size}"
        )));
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(proof_error(
                "inclusion proof is longer than the tree is deep",
            ));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = hasher.node(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = hasher.node(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(proof_error(
            "inclusion proof is shorter than the tree is deep",
        ));
    }
    if &r != root {
        return Err(proof_error("inclusion proof does not lead to the root"));
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: checks that the tree (`new`, `new_root`) extends (`old`, `old_root`).
///
/// As in transparency-dev/merkle, a proof from the empty tree is rejected as meaningless; callers
/// that must accept it (the tlog-witness `old 0` case) check that case themselves.
pub fn verify_consistency(
    hasher: &dyn Hasher,
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<()> {
    if new < old {
        return Err(proof_error(format!(
            "new size {new} is smaller than old size {old}"
        )));
    }
    if old == new {
        if !proof.is_empty() {
            return Err(proof_error(
                "sizes are equal but the consistency proof is not empty",
            ));
        }
        if old_root != new_root {
            return Err(proof_error("sizes are equal but the roots differ"));
        }
        return Ok(());
    }
    if old == 0 {
        return Err(proof_error(
            "a consistency proof from the empty tree is meaningless",
        ));
    }
    if proof.is_empty() {
        return Err(proof_error("consistency proof is empty"));
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if snode == 0 {
            return Err(proof_error("consistency proof is too long"));
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = hasher.node(c, &fr);
            sr = hasher.node(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = hasher.node(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(proof_error("consistency proof is too short"));
    }
    if &fr != old_root {
        return Err(proof_error(
            "consistency proof does not lead to the old root",
        ));
    }
    if &sr != new_root {
        return Err(proof_error(
            "consistency proof does not lead to the new root",
        ));
    }
    Ok(())
}

/// The right edge of a growing tree (a compact range from leaf 0): the roots of its perfect
/// subtrees, largest first. Streams any number of leaves in O(log n) memory.
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    /// `(level, hash)` of each perfect subtree, left to right, levels strictly decreasing.
    nodes: Vec<(u8, Hash)>,
    size: u64,
}

impl Frontier {
    /// An empty frontier.
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of leaves pushed.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Appends a leaf hash.
    pub fn push(&mut self, hasher: &dyn Hasher, leaf: Hash) {
        let mut node = (0u8, leaf);
        while let Some(&(level, left)) = self.nodes.last() {
            if level != node.0 {
                break;
            }
            self.nodes.pop();
            node = (level + 1, hasher.node(&left, &node.1));
        }
        self.nodes.push(node);
        self.size += 1;
    }
    /// The RFC 6962 root of the leaves pushed so far.
    pub fn root(&self, hasher: &dyn Hasher) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(&(_, mut acc)) = it.next() else {
            return hasher.empty_root();
        };
        for (_, left) in it {
            acc = hasher.node(left, &acc);
        }
        acc
    }
}

/// The perfect subtrees outside the leaf range `[from, to)` that, together with the leaves in
/// the range, determine the root of the tree of `size` leaves. Listed in the order the RFC 6962
/// recursion meets them (left to right). An export carries their hashes.
pub fn covering_subtrees(size: u64, from: u64, to: u64) -> Vec<(u8, u64)> {
    fn walk(a: u64, b: u64, from: u64, to: u64, out: &mut Vec<(u8, u64)>) {
        let n = b - a;
        let disjoint = b <= from || a >= to;
        if disjoint && n.is_power_of_two() {
            let level = n.trailing_zeros() as u8;
            out.push((level, a >> level));
            return;
        }
        if n == 1 || (a >= from && b <= to) {
            return; // inside the range: computed from the leaves
        }
        let k = split_point(n);
        walk(a, a + k, from, to, out);
        walk(a + k, b, from, to, out);
    }
    let mut out = Vec::new();
    if size > 0 && from < to {
        walk(0, size, from, to, &mut out);
    }
    out
}

/// Root of the tree of `size` leaves from the leaf hashes of `[from, from + leaves.len())` and the
/// hashes of [`covering_subtrees`] (looked up by `(level, index)`).
pub fn root_with_range(
    hasher: &dyn Hasher,
    size: u64,
    from: u64,
    leaves: &[Hash],
    subtrees: &std::collections::HashMap<(u8, u64), Hash>,
) -> Result<Hash> {
    let to = from + leaves.len() as u64;
    if to > size || leaves.is_empty() {
        return Err(Error::invalid(format!(
            "entries {from}..{to} do not lie inside a tree of {size} entries"
        )));
    }
    fn walk(
        h: &dyn Hasher,
        a: u64,
        b: u64,
        from: u64,
        leaves: &[Hash],
        subtrees: &std::collections::HashMap<(u8, u64), Hash>,
    ) -> Result<Hash> {
        let n = b - a;
        let to = from + leaves.len() as u64;
        if (b <= from || a >= to) && n.is_power_of_two() {
            let level = n.trailing_zeros() as u8;
            return subtrees.get(&(level, a >> level)).copied().ok_or_else(|| {
                Error::invalid(format!(
                    "subtree (level {level}, index {}) is missing",
                    a >> level
                ))
            });
        }
        if a >= from && b <= to && n.is_power_of_two() {
            return Ok(perfect_root(
                h,
                &leaves[(a - from) as usize..(b - from) as usize],
            ));
        }
        let k = split_point(n);
        let l = walk(h, a, a + k, from, leaves, subtrees)?;
        let r = walk(h, a + k, b, from, leaves, subtrees)?;
        Ok(h.node(&l, &r))
    }
    walk(hasher, 0, size, from, leaves, subtrees)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::hash::Sha256Hasher;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| Sha256Hasher.leaf(&i.to_be_bytes()))
            .collect()
    }

    /// Straight from the RFC's recursive definition, as an oracle.
    fn mth(h: &dyn Hasher, d: &[Hash]) -> Hash {
        match d.len() {
            0 => h.empty_root(),
            1 => d[0],
            n => {
                let k = split_point(n as u64) as usize;
                h.node(&mth(h, &d[..k]), &mth(h, &d[k..]))
            }
        }
    }

    #[test]
    fn roots_match_the_recursive_definition() {
        let h = Sha256Hasher;
        for n in 0..70u64 {
            let l = leaves(n);
            let want = mth(&h, &l);
            assert_eq!(
                root(
                    &LeafSlice {
                        hasher: &h,
                        leaves: &l
                    },
                    &h,
                    n
                )
                .unwrap(),
                want,
                "n={n}"
            );
            assert_eq!(root_from_leaves(&h, &l), want, "n={n}");
        }
    }

    #[test]
    fn every_proof_verifies_for_small_trees() {
        let h = Sha256Hasher;
        for n in 1..40u64 {
            let l = leaves(n);
            let r = root(
                &LeafSlice {
                    hasher: &h,
                    leaves: &l,
                },
                &h,
                n,
            )
            .unwrap();
            for i in 0..n {
                let p = inclusion_proof(
                    &LeafSlice {
                        hasher: &h,
                        leaves: &l,
                    },
                    &h,
                    i,
                    n,
                )
                .unwrap();
                verify_inclusion(&h, i, n, &l[i as usize], &p, &r).unwrap();
                assert!(verify_inclusion(&h, i, n, &Hash([7; 32]), &p, &r).is_err());
            }
            for m in 1..=n {
                let rm = root(
                    &LeafSlice {
                        hasher: &h,
                        leaves: &l,
                    },
                    &h,
                    m,
                )
                .unwrap();
                let p = consistency_proof(
                    &LeafSlice {
                        hasher: &h,
                        leaves: &l,
                    },
                    &h,
                    m,
                    n,
                )
                .unwrap();
                verify_consistency(&h, m, n, &rm, &r, &p).unwrap();
                if m < n {
                    assert!(verify_consistency(&h, m, n, &r, &rm, &p).is_err());
                }
            }
        }
    }
}
