//! The [`Embedder`] plugin trait: text in, unit-length vectors out, for semantic search.
//!
//! Vectors are a derived index of the agent memory, like the keyword index: computed from a
//! fact's content, stored beside it by the backend, never part of anything signed, and rebuilt
//! from the ledger by `cortex memory rebuild`. An embedder is sync and batch-first (a model runs
//! far faster on a batch than on texts one by one); callers in async code run it on a blocking
//! pool.
//!
//! [`HashEmbedder`] is the in-memory test embedder: deterministic, instant, no model files. It
//! hashes words into buckets, so texts sharing words are close; it knows nothing of meaning and is
//! for tests and examples only.

use crate::error::Result;

/// A sentence-embedding model.
pub trait Embedder: Send + Sync {
    /// A stable identifier of the model and its settings (for example
    /// `sentence-transformers/all-MiniLM-L6-v2`). Stored with every vector, so vectors from
    /// another model are recognised and recomputed rather than compared.
    fn model_id(&self) -> &str;

    /// Length of every vector [`Embedder::embed`] returns.
    fn dimension(&self) -> usize;

    /// One vector per text, in order, each of length [`Embedder::dimension`] and L2-normalised
    /// (so the dot product of two vectors is their cosine similarity). An empty text gets a
    /// vector too (the model's embedding of no words).
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
}

impl<E: Embedder + ?Sized> Embedder for std::sync::Arc<E> {
    fn model_id(&self) -> &str {
        (**self).model_id()
    }
    fn dimension(&self) -> usize {
        (**self).dimension()
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        (**self).embed(texts)
    }
}

/// Scales `v` to unit length in place; a zero vector stays zero.
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

/// A vector as stored by a backend: its components as little-endian IEEE 754 `f32`s.
pub fn vector_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A stored vector's components ([`vector_bytes`]); `None` if the length is not a multiple of 4.
pub fn vector_from_bytes(b: &[u8]) -> Option<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return None;
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// The test embedder: each word of the text (the keyword tokenizer's terms) adds ±1 to one of
/// `dimension` buckets chosen by a hash of the word; the sum is normalised. Deterministic across
/// runs and platforms.
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    dimension: usize,
    id: String,
}

impl HashEmbedder {
    /// A test embedder of `dimension` (at least 1) buckets.
    pub fn new(dimension: usize) -> Self {
        let dimension = dimension.max(1);
        HashEmbedder {
            dimension,
            id: format!("cortex/hash-{dimension}"),
        }
    }
}

impl Default for HashEmbedder {
    fn default() -> Self {
        Self::new(64)
    }
}

impl Embedder for HashEmbedder {
    fn model_id(&self) -> &str {
        &self.id
    }
    fn dimension(&self) -> usize {
        self.dimension
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|text| {
                let mut v = vec![0f32; self.dimension];
                for term in crate::memory::bm25::tokens(text) {
                    // FNV-1a: stable, and enough spread for a test embedder.
                    let h = term.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                    });
                    let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
                    v[(h % self.dimension as u64) as usize] += sign;
                }
                normalize(&mut v);
                v
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn hash_embedder_is_unit_length_and_closer_for_shared_words() {
        let e = HashEmbedder::new(64);
        let v = e
            .embed(&["dark mode editor", "editor dark theme", "tax forms due"])
            .unwrap();
        assert_eq!(v.len(), 3);
        for x in &v {
            assert_eq!(x.len(), 64);
            assert!((dot(x, x) - 1.0).abs() < 1e-5);
        }
        assert!(dot(&v[0], &v[1]) > dot(&v[0], &v[2]));
        assert_eq!(e.embed(&["dark mode editor"]).unwrap()[0], v[0]);
        assert_eq!(e.embed(&[""]).unwrap()[0], vec![0.0; 64]);
    }
}
