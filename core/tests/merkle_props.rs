//! Property tests of the ledger math: proofs served from incrementally built tiles, and the
//! canonical entry encoding.
//!
//! For random trees (1 to 1999 leaves, appended in random batches) every inclusion and
//! consistency proof read through `tiles::TileNodes` verifies, equals the proof computed from the
//! leaves, and stops verifying when any single bit of the leaf, a proof hash or a root is flipped,
//! or when the index or sizes are changed to values whose proof has another shape.

use cortex_core::ledger::entry::{self, EntryRef};
use cortex_core::ledger::merkle::{self, LeafSlice};
use cortex_core::ledger::tiles::{self, TileNodes, TileReader, TileSet};
use cortex_core::{Hash, Hasher, Sha256Hasher};
use proptest::prelude::*;
use proptest::sample::Index;

/// A tree built the way the ledger builds it: leaves appended in batches, tiles updated per batch.
struct Tree {
    leaves: Vec<Hash>,
    tiles: TileSet,
}

impl Tree {
    /// `size` leaves derived from `seed`, appended in batches of the sizes in `batches` (cycled;
    /// the last batch is cut to fit). After each batch the tiles must give the leaves' root.
    fn build(size: u64, seed: u64, batches: &[usize]) -> Tree {
        let h = Sha256Hasher;
        let leaves: Vec<Hash> = (0..size)
            .map(|i| h.leaf(&[seed.to_be_bytes(), i.to_be_bytes()].concat()))
            .collect();
        let mut set = TileSet::default();
        let mut done = 0usize;
        for &batch in batches.iter().cycle() {
            if done == leaves.len() {
                break;
            }
            let end = (done + batch).min(leaves.len());
            let changed = tiles::append_tiles(
                &h,
                done as u64,
                &mut |l, i| set.read_tile(l, i),
                &leaves[done..end],
            )
            .unwrap();
            for t in changed {
                set.insert(t);
            }
            done = end;
            let nodes = TileNodes::new(&set, &h);
            assert_eq!(
                merkle::root(&nodes, &h, done as u64).unwrap(),
                merkle::root_from_leaves(&h, &leaves[..done]),
                "root after a batch ending at {done}"
            );
        }
        Tree { leaves, tiles: set }
    }

    fn nodes(&self) -> TileNodes<'_> {
        TileNodes::new(&self.tiles, &Sha256Hasher)
    }

    fn root(&self, size: u64) -> Hash {
        merkle::root(&self.nodes(), &Sha256Hasher, size).unwrap()
    }
}

/// Tree size, leaf seed and batch sizes.
fn tree_params() -> impl Strategy<Value = (u64, u64, Vec<usize>)> {
    (
        1u64..2000,
        any::<u64>(),
        prop::collection::vec(
            prop_oneof![1usize..20, 1usize..300, Just(16usize), Just(256usize)],
            1..12,
        ),
    )
}

/// How each element of an inclusion proof is combined: `true` if it is the left sibling.
/// From RFC 9162 §2.1.3.1 PATH(m, D[n]), bottom-up.
fn inclusion_shape(m: u64, n: u64) -> Vec<bool> {
    if n == 1 {
        return Vec::new();
    }
    let k = merkle::split_point(n);
    let mut s = if m < k {
        inclusion_shape(m, k)
    } else {
        inclusion_shape(m - k, n - k)
    };
    s.push(m >= k);
    s
}

/// How each element of a consistency proof is used (RFC 9162 §2.1.4.1 SUBPROOF, bottom-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The root of the old tree's last perfect subtree (absent when the old size is a power of
    /// two: the old root is that subtree).
    Seed,
    /// A left sibling: part of both the old and the new root.
    Left,
    /// A right sibling: part of the new root only.
    Right,
}

fn consistency_shape(m: u64, n: u64, complete: bool) -> Vec<Step> {
    if m == n {
        return if complete {
            Vec::new()
        } else {
            vec![Step::Seed]
        };
    }
    let k = merkle::split_point(n);
    let (mut s, step) = if m <= k {
        (consistency_shape(m, k, complete), Step::Right)
    } else {
        (consistency_shape(m - k, n - k, false), Step::Left)
    };
    s.push(step);
    s
}

/// The exception the tampering properties allow is real: a proof for index 0 of 5 leaves has the
/// shape of one for index 0 of 8 leaves (three right siblings), so the verifier cannot tell the
/// sizes apart; only the root binds the size.
#[test]
fn equal_shapes_are_indistinguishable() {
    let h = Sha256Hasher;
    let t = Tree::build(5, 7, &[5]);
    let proof = merkle::inclusion_proof(&t.nodes(), &h, 0, 5).unwrap();
    assert_eq!(inclusion_shape(0, 5), inclusion_shape(0, 8));
    merkle::verify_inclusion(&h, 0, 8, &t.leaves[0], &proof, &t.root(5)).unwrap();
    assert_ne!(inclusion_shape(0, 5), inclusion_shape(0, 4));
    assert!(merkle::verify_inclusion(&h, 0, 4, &t.leaves[0], &proof, &t.root(5)).is_err());
    // Likewise 2 -> 3 and 2 -> 4: the old root, then one right sibling.
    assert_eq!(consistency_shape(2, 3, true), vec![Step::Right]);
    assert_eq!(consistency_shape(2, 4, true), vec![Step::Right]);
    let t = Tree::build(3, 7, &[1]);
    let proof = merkle::consistency_proof(&t.nodes(), &h, 2, 3).unwrap();
    merkle::verify_consistency(&h, 2, 4, &t.root(2), &t.root(3), &proof).unwrap();
    assert!(merkle::verify_consistency(&h, 2, 5, &t.root(2), &t.root(3), &proof).is_err());
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut f = *h;
    f.0[bit / 8] ^= 1 << (bit % 8);
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Roots read from tiles equal `root_from_leaves` at every size, not only batch ends.
    #[test]
    fn tile_roots_equal_leaf_roots((size, seed, batches) in tree_params(), at in any::<Index>()) {
        let t = Tree::build(size, seed, &batches);
        let m = at.index(size as usize) as u64 + 1;
        prop_assert_eq!(
            t.root(m),
            merkle::root_from_leaves(&Sha256Hasher, &t.leaves[..m as usize])
        );
        prop_assert_eq!(t.root(size), merkle::root_from_leaves(&Sha256Hasher, &t.leaves));
    }

    #[test]
    fn inclusion_proofs_from_tiles_verify_and_resist_tampering(
        (size, seed, batches) in tree_params(),
        at in any::<Index>(),
        other_index in any::<Index>(),
        other_size in 1u64..4000,
    ) {
        let h = Sha256Hasher;
        let t = Tree::build(size, seed, &batches);
        let i = at.index(size as usize) as u64;
        let leaf = t.leaves[i as usize];
        let root = t.root(size);
        let proof = merkle::inclusion_proof(&t.nodes(), &h, i, size).unwrap();
        let from_leaves = LeafSlice { hasher: &h, leaves: &t.leaves };
        prop_assert_eq!(&proof, &merkle::inclusion_proof(&from_leaves, &h, i, size).unwrap());
        prop_assert!(merkle::verify_inclusion(&h, i, size, &leaf, &proof, &root).is_ok());

        for bit in 0..256 {
            prop_assert!(
                merkle::verify_inclusion(&h, i, size, &flip(&leaf, bit), &proof, &root).is_err(),
                "leaf bit {} flipped", bit
            );
            prop_assert!(
                merkle::verify_inclusion(&h, i, size, &leaf, &proof, &flip(&root, bit)).is_err(),
                "root bit {} flipped", bit
            );
            for j in 0..proof.len() {
                let mut p = proof.clone();
                p[j] = flip(&p[j], bit);
                prop_assert!(
                    merkle::verify_inclusion(&h, i, size, &leaf, &p, &root).is_err(),
                    "proof[{}] bit {} flipped", j, bit
                );
            }
        }
        if !proof.is_empty() {
            prop_assert!(merkle::verify_inclusion(&h, i, size, &leaf, &proof[1..], &root).is_err());
            prop_assert!(
                merkle::verify_inclusion(&h, i, size, &leaf, &proof[..proof.len() - 1], &root)
                    .is_err()
            );
        }
        let mut longer = proof.clone();
        longer.push(root);
        prop_assert!(merkle::verify_inclusion(&h, i, size, &leaf, &longer, &root).is_err());

        // Another index or size: the proof must fail unless it has exactly the same shape (the
        // verifier then does the very same hashing; e.g. index 0 of 5 leaves and of 8 leaves).
        let shape = inclusion_shape(i, size);
        let claims = [
            (i.wrapping_sub(1), size),
            (i + 1, size),
            (i ^ 2, size),
            (other_index.index(size as usize) as u64, size),
            (i, size + 1),
            (i, size - 1),
            (i, size * 2),
            (i, size / 2),
            (i, other_size),
            (other_index.index(size as usize) as u64, other_size),
        ];
        for (j, n) in claims {
            if (j, n) == (i, size) {
                continue;
            }
            let verdict = merkle::verify_inclusion(&h, j, n, &leaf, &proof, &root);
            if j < n && inclusion_shape(j, n) == shape {
                prop_assert!(verdict.is_ok(), "same shape at index {} size {}", j, n);
            } else {
                prop_assert!(verdict.is_err(), "claimed index {} size {} verified", j, n);
            }
        }
    }

    #[test]
    fn consistency_proofs_from_tiles_verify_and_resist_tampering(
        (size, seed, batches) in tree_params(),
        at in any::<Index>(),
        other_old in any::<Index>(),
        other_new in 1u64..4000,
    ) {
        let h = Sha256Hasher;
        let t = Tree::build(size, seed, &batches);
        let m = at.index(size as usize) as u64 + 1;
        let (old_root, new_root) = (t.root(m), t.root(size));
        let proof = merkle::consistency_proof(&t.nodes(), &h, m, size).unwrap();
        let from_leaves = LeafSlice { hasher: &h, leaves: &t.leaves };
        prop_assert_eq!(&proof, &merkle::consistency_proof(&from_leaves, &h, m, size).unwrap());
        prop_assert!(merkle::verify_consistency(&h, m, size, &old_root, &new_root, &proof).is_ok());

        for bit in 0..256 {
            prop_assert!(
                merkle::verify_consistency(&h, m, size, &flip(&old_root, bit), &new_root, &proof)
                    .is_err(),
                "old root bit {} flipped", bit
            );
            prop_assert!(
                merkle::verify_consistency(&h, m, size, &old_root, &flip(&new_root, bit), &proof)
                    .is_err(),
                "new root bit {} flipped", bit
            );
            for j in 0..proof.len() {
                let mut p = proof.clone();
                p[j] = flip(&p[j], bit);
                prop_assert!(
                    merkle::verify_consistency(&h, m, size, &old_root, &new_root, &p).is_err(),
                    "proof[{}] bit {} flipped", j, bit
                );
            }
        }
        if !proof.is_empty() {
            prop_assert!(
                merkle::verify_consistency(&h, m, size, &old_root, &new_root, &proof[1..]).is_err()
            );
            prop_assert!(merkle::verify_consistency(
                &h, m, size, &old_root, &new_root, &proof[..proof.len() - 1]
            ).is_err());
        }
        let mut longer = proof.clone();
        longer.push(new_root);
        prop_assert!(merkle::verify_consistency(&h, m, size, &old_root, &new_root, &longer).is_err());
        if m < size {
            prop_assert!(
                merkle::verify_consistency(&h, m, size, &new_root, &old_root, &proof).is_err(),
                "swapped roots verified"
            );
        }

        // Other sizes: the proof must fail unless its shape is the same.
        let shape = consistency_shape(m, size, true);
        let other_old = other_old.index(size as usize) as u64 + 1;
        let claims = [
            (m - 1, size),
            (m + 1, size),
            (m ^ 2, size),
            (other_old, size),
            (m, size + 1),
            (m, size - 1),
            (m, size * 2),
            (m, size / 2),
            (m, other_new),
            (other_old, other_new),
        ];
        for (o, n) in claims {
            if (o, n) == (m, size) {
                continue;
            }
            let verdict = merkle::verify_consistency(&h, o, n, &old_root, &new_root, &proof);
            let same_shape = 0 < o && o <= n && consistency_shape(o, n, true) == shape;
            if same_shape {
                prop_assert!(verdict.is_ok(), "same shape at sizes {} -> {}", o, n);
            } else {
                prop_assert!(verdict.is_err(), "claimed sizes {} -> {} verified", o, n);
            }
        }
    }

    /// Canonical bytes decode to the same five fields.
    #[test]
    fn canonical_entries_round_trip(
        index in any::<u64>(),
        timestamp in ".{0,30}",
        project in ".{0,30}",
        action in ".{0,30}",
        detail in ".{0,200}",
    ) {
        let e = EntryRef {
            index,
            timestamp: &timestamp,
            project: &project,
            action: &action,
            detail: &detail,
        };
        let bytes = e.canonical_bytes();
        prop_assert_eq!(bytes[0], entry::ENTRY_VERSION);
        let back = entry::decode_entry(&bytes).unwrap();
        prop_assert_eq!(back.as_ref(), e);
        // The leaf hash is the hash of exactly these bytes.
        let mut buf = Vec::new();
        prop_assert_eq!(e.leaf_hash(&Sha256Hasher, &mut buf), Sha256Hasher.leaf(&bytes));
        // Truncated or extended bytes are rejected, never decoded as another entry.
        prop_assert!(entry::decode_entry(&bytes[..bytes.len() - 1]).is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        prop_assert!(entry::decode_entry(&extra).is_err());
    }

    /// The same characters split into fields at different places never give the same bytes
    /// (the seed's `a:b:c` joining made `("a:b", "c")` and `("a", "b:c")` collide).
    #[test]
    fn different_field_splits_never_collide(
        text in "[a-c:|\u{e9}]{0,24}",
        cuts_a in prop::array::uniform3(any::<Index>()),
        cuts_b in prop::array::uniform3(any::<Index>()),
        index in 0u64..4,
    ) {
        let bounds: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let split = |cuts: [Index; 3]| {
            let mut c: Vec<usize> = cuts.iter().map(|x| bounds[x.index(bounds.len())]).collect();
            c.sort_unstable();
            [&text[..c[0]], &text[c[0]..c[1]], &text[c[1]..c[2]], &text[c[2]..]]
        };
        let (a, b) = (split(cuts_a), split(cuts_b));
        fn entry(index: u64, f: [&str; 4]) -> EntryRef<'_> {
            EntryRef {
                index,
                timestamp: f[0],
                project: f[1],
                action: f[2],
                detail: f[3],
            }
        }
        let (ea, eb) = (entry(index, a), entry(index, b));
        if a == b {
            prop_assert_eq!(ea.canonical_bytes(), eb.canonical_bytes());
        } else {
            prop_assert_ne!(ea.canonical_bytes(), eb.canonical_bytes());
            prop_assert_ne!(
                ea.leaf_hash(&Sha256Hasher, &mut Vec::new()),
                eb.leaf_hash(&Sha256Hasher, &mut Vec::new())
            );
        }
        // A different index with the same fields differs too.
        let moved = EntryRef { index: index + 1, ..ea };
        prop_assert_ne!(ea.canonical_bytes(), moved.canonical_bytes());
    }

    /// Any two distinct entries have distinct canonical bytes.
    #[test]
    fn distinct_entries_have_distinct_bytes(
        a in (0u64..3, "[ab]{0,3}", "[ab]{0,3}", "[ab]{0,3}", "[ab]{0,3}"),
        b in (0u64..3, "[ab]{0,3}", "[ab]{0,3}", "[ab]{0,3}", "[ab]{0,3}"),
    ) {
        let ea = EntryRef { index: a.0, timestamp: &a.1, project: &a.2, action: &a.3, detail: &a.4 };
        let eb = EntryRef { index: b.0, timestamp: &b.1, project: &b.2, action: &b.3, detail: &b.4 };
        prop_assert_eq!(ea == eb, ea.canonical_bytes() == eb.canonical_bytes());
    }
}
