//! The BERT encoder of all-MiniLM-L6-v2 (Hugging Face `BertModel`, post-LayerNorm, absolute
//! positions, exact erf GELU), inference only, on candle's CPU tensors.
//!
//! Written here rather than taken from `candle-transformers` for speed on small machines: the
//! query, key and value projections are one matrix product per layer, and the GELU runs as one
//! in-place pass over the intermediate activations, split over candle's threads and compiled
//! for the CPU's widest vector instructions (`pulp`), with an erf accurate to float rounding.
//! candle's own `gelu_erf` calls a scalar `erff` per element on one thread and took more time
//! than either of the feed-forward matrix products.

use candle_core::{CpuStorage, DType, InplaceOp1, Layout, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

/// The fields of the model's `config.json` this encoder reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
}

/// One encoder layer.
struct Layer {
    /// Query, key and value projections stacked: `(3 * hidden, hidden)`.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The encoder: embeddings, then the layers; [`Bert::forward`] returns the last hidden state.
pub struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
}

fn linear(vb: VarBuilder, inputs: usize, outputs: usize) -> candle_core::Result<Linear> {
    candle_nn::linear(inputs, outputs, vb)
}

fn layer_norm(vb: VarBuilder, size: usize, eps: f64) -> candle_core::Result<LayerNorm> {
    candle_nn::layer_norm(size, eps, vb)
}

impl Bert {
    /// Loads the weights under their Hugging Face names (`embeddings.*`, `encoder.layer.N.*`).
    pub fn load(vb: VarBuilder, c: &Config) -> candle_core::Result<Bert> {
        if c.hidden_act != "gelu" {
            candle_core::bail!("hidden_act {:?} (only \"gelu\" is supported)", c.hidden_act);
        }
        if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            candle_core::bail!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                c.hidden_size,
                c.num_attention_heads
            );
        }
        let h = c.hidden_size;
        let e = vb.pp("embeddings");
        let embedding = |name: &str, rows: usize| candle_nn::embedding(rows, h, e.pp(name));
        let word = embedding("word_embeddings", c.vocab_size)?;
        let position = embedding("position_embeddings", c.max_position_embeddings)?;
        let token_type = embedding("token_type_embeddings", c.type_vocab_size)?;
        let embeddings_norm = layer_norm(e.pp("LayerNorm"), h, c.layer_norm_eps)?;
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let a = l.pp("attention");
                let s = a.pp("self");
                let part = |name: &str| -> candle_core::Result<(Tensor, Tensor)> {
                    let p = s.pp(name);
                    Ok((p.get((h, h), "weight")?, p.get(h, "bias")?))
                };
                let (q, k, v) = (part("query")?, part("key")?, part("value")?);
                let qkv = Linear::new(
                    Tensor::cat(&[&q.0, &k.0, &v.0], 0)?,
                    Some(Tensor::cat(&[&q.1, &k.1, &v.1], 0)?),
                );
                Ok(Layer {
                    qkv,
                    attention_out: linear(a.pp("output.dense"), h, h)?,
                    attention_norm: layer_norm(a.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
                    intermediate: linear(l.pp("intermediate.dense"), h, c.intermediate_size)?,
                    output: linear(l.pp("output.dense"), c.intermediate_size, h)?,
                    output_norm: layer_norm(l.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
                })
            })
            .collect::<candle_core::Result<Vec<Layer>>>()?;
        Ok(Bert {
            word,
            position,
            token_type,
            embeddings_norm,
            layers,
            heads: c.num_attention_heads,
            hidden: h,
        })
    }

    /// The last hidden state, `(batch, tokens, hidden)`, of token `ids` `(batch, tokens)`
    /// (all of token type 0) where `mask` `(batch, tokens)` is 1 for real tokens and 0 for
    /// padding. Padding positions take no part in any real token's attention.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, tokens) = ids.dims2()?;
        let device = ids.device();
        let positions = Tensor::arange(0u32, tokens as u32, device)?;
        let types = Tensor::zeros(tokens, DType::U32, device)?;
        let x = self
            .word
            .forward(ids)?
            .broadcast_add(&self.position.forward(&positions)?)?
            .broadcast_add(&self.token_type.forward(&types)?)?;
        let mut x = self.embeddings_norm.forward(&x)?;
        // Added to the attention scores: 0 for real tokens, the lowest f32 for padding (as
        // Hugging Face does), shaped to broadcast over heads and query positions.
        let mask = mask.to_dtype(DType::F32)?;
        let bias =
            ((mask.ones_like()? - &mask)? * f64::from(f32::MIN))?.reshape((batch, 1, 1, tokens))?;
        let head = self.hidden / self.heads;
        let scale = 1.0 / (head as f64).sqrt();
        for l in &self.layers {
            // (batch, tokens, 3, heads, head) -> 3 x (batch, heads, tokens, head)
            let qkv = l
                .qkv
                .forward(&x)?
                .reshape((batch, tokens, 3, self.heads, head))?
                .permute((2, 0, 3, 1, 4))?;
            let q = qkv.get(0)?.contiguous()?;
            let k = qkv.get(1)?.contiguous()?;
            let v = qkv.get(2)?.contiguous()?;
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let context = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((
                batch,
                tokens,
                self.hidden,
            ))?;
            let attended = (l.attention_out.forward(&context)? + &x)?;
            x = l.attention_norm.forward(&attended)?;
            let inner = l.intermediate.forward(&x)?;
            inner.inplace_op1(&Gelu)?;
            let out = (l.output.forward(&inner)? + &x)?;
            x = l.output_norm.forward(&out)?;
        }
        Ok(x)
    }
}

/// `erf(x)` in f32 to within 3.5e-7 (libm's `erff` is within 6e-8; the matrix product the
/// GELU feeds rounds more than either): the rational approximation of Eigen and XLA (odd degree-13 numerator over even degree-8 denominator, `x` clamped to
/// [-4, 4], where erf is ±1 to f32 precision; the result kept within ±1). Branch-free, so loops
/// over it vectorise.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2.mul_add(-2.726_142_3e-10, 2.770_681_4e-8);
    p = x2.mul_add(p, -2.101_024e-6);
    p = x2.mul_add(p, -5.692_506_4e-5);
    p = x2.mul_add(p, -7.349_906_3e-4);
    p = x2.mul_add(p, -2.954_600_5e-3);
    p = x2.mul_add(p, -1.609_603_3e-2);
    p *= x;
    let mut q = x2.mul_add(-1.456_607_2e-5, -2.133_740_6e-4);
    q = x2.mul_add(q, -1.682_827e-3);
    q = x2.mul_add(q, -7.373_329e-3);
    q = x2.mul_add(q, -1.426_474e-2);
    // The quotient can overshoot ±1 by an ulp or two near the clamp; erf never does.
    (p / q).clamp(-1.0, 1.0)
}

/// The exact GELU, `x * (1 + erf(x / sqrt 2)) / 2`.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// GELU over a slice, compiled for each instruction set `pulp` dispatches to.
struct GeluSlice<'a>(&'a mut [f32]);

impl pulp::WithSimd for GeluSlice<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for v in self.0.iter_mut() {
            *v = gelu(*v);
        }
    }
}

/// [`gelu`] in place over a contiguous f32 tensor, in chunks over candle's threads.
struct Gelu;

impl InplaceOp1 for Gelu {
    fn name(&self) -> &'static str {
        "minilm-gelu"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("minilm-gelu: f32 only");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("minilm-gelu: contiguous tensors only");
        };
        use rayon::prelude::*;
        let arch = pulp::Arch::new();
        data[start..end]
            .par_chunks_mut(16 * 1024)
            .for_each(|chunk| arch.dispatch(GeluSlice(chunk)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn gelu_matches_candles_exact_gelu_to_float_rounding() {
        // Every 1/1000 over [-12, 12], where GELU saturates either way.
        let xs: Vec<f32> = (-12_000..=12_000).map(|i| i as f32 / 1000.0).collect();
        let t = Tensor::from_vec(xs.clone(), xs.len(), &Device::Cpu).unwrap();
        let want: Vec<f32> = t.gelu_erf().unwrap().to_vec1().unwrap();
        t.inplace_op1(&Gelu).unwrap();
        let got: Vec<f32> = t.to_vec1().unwrap();
        let mut worst = 0f32;
        for ((x, g), w) in xs.iter().zip(&got).zip(&want) {
            // erf within 3.5e-7, scaled by x / 2, plus the rounding of both results.
            worst = worst.max((g - w).abs() / x.abs().max(1.0));
            assert!(
                (g - w).abs() <= 4e-7 * x.abs().max(1.0),
                "gelu({x}) = {g}, libm erff gives {w}"
            );
        }
        eprintln!("largest difference: {worst:e}");
        for i in 0..=50_000 {
            let x = i as f32 / 10_000.0;
            let want = candle_core::cpu::erf::erf_f64(f64::from(x));
            assert!((f64::from(erf(x)) - want).abs() < 3.5e-7, "erf({x})");
            assert_eq!(erf(-x), -erf(x));
        }
        // Saturation and sign.
        assert_eq!(erf(10.0), 1.0);
        assert_eq!(erf(-10.0), -1.0);
        assert_eq!(erf(0.0), 0.0);
    }
}
