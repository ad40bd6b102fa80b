//! The BERT encoder stack of all-MiniLM-L6-v2 on candle's tensors: embeddings, then
//! `num_hidden_layers` blocks of self-attention and a GELU feed-forward, each closed by a
//! residual LayerNorm (post-norm, as in the original BERT). Inference only, so dropout is
//! absent. The weights are read by their Hugging Face names (`embeddings.*`,
//! `encoder.layer.N.*`), with or without a `bert.` prefix.

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

/// The fields of a BERT `config.json` the forward pass needs.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    /// `gelu` (the exact, erf form) or `gelu_new` / `gelu_pytorch_tanh` (the tanh form).
    #[serde(default = "gelu")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
}

fn gelu() -> String {
    "gelu".into()
}

fn two() -> usize {
    2
}

fn eps() -> f64 {
    1e-12
}

struct Embeddings {
    words: Embedding,
    positions: Embedding,
    types: Embedding,
    norm: LayerNorm,
}

struct Block {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    up: Linear,
    down: Linear,
    out_norm: LayerNorm,
}

/// A loaded BERT: token ids in, the last layer's hidden states out.
pub(super) struct Bert {
    embeddings: Embeddings,
    blocks: Vec<Block>,
    heads: usize,
    head_dim: usize,
    tanh_gelu: bool,
}

impl Bert {
    pub fn load(vb: VarBuilder, c: &Config) -> Result<Self> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
        let tanh_gelu = match c.hidden_act.as_str() {
            "gelu" => false,
            "gelu_new" | "gelu_pytorch_tanh" => true,
            other => candle_core::bail!("hidden_act {other:?} is not supported (gelu, gelu_new)"),
        };
        if c.num_attention_heads == 0 || c.hidden_size % c.num_attention_heads != 0 {
            candle_core::bail!("hidden_size {} is not a multiple of {} heads", c.hidden_size, c.num_attention_heads);
        }
        let e = vb.pp("embeddings");
        let h = c.hidden_size;
        let embeddings = Embeddings {
            words: embedding(c.vocab_size, h, e.pp("word_embeddings"))?,
            positions: embedding(c.max_position_embeddings, h, e.pp("position_embeddings"))?,
            types: embedding(c.type_vocab_size, h, e.pp("token_type_embeddings"))?,
            norm: layer_norm(h, c.layer_norm_eps, e.pp("LayerNorm"))?,
        };
        let blocks = (0..c.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let (attention, own) = (l.pp("attention.self"), l.pp("attention.output"));
                Ok(Block {
                    query: linear(h, h, attention.pp("query"))?,
                    key: linear(h, h, attention.pp("key"))?,
                    value: linear(h, h, attention.pp("value"))?,
                    attention_out: linear(h, h, own.pp("dense"))?,
                    attention_norm: layer_norm(h, c.layer_norm_eps, own.pp("LayerNorm"))?,
                    up: linear(h, c.intermediate_size, l.pp("intermediate.dense"))?,
                    down: linear(c.intermediate_size, h, l.pp("output.dense"))?,
                    out_norm: layer_norm(h, c.layer_norm_eps, l.pp("output.LayerNorm"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { embeddings, blocks, heads: c.num_attention_heads, head_dim: h / c.num_attention_heads, tanh_gelu })
    }

    /// Hidden states `(batch, seq, hidden)` for `ids` `(batch, seq)`, all of token type 0;
    /// `mask` (same shape, 1 for a token and 0 for padding) keeps attention off the padding.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let e = &self.embeddings;
        let seq = ids.dim(1)?;
        let positions = Tensor::arange(0u32, seq as u32, ids.device())?;
        let summed = (e.words.forward(ids)? + e.types.forward(&ids.zeros_like()?)?)?;
        let mut x = e.norm.forward(&summed.broadcast_add(&e.positions.forward(&positions)?)?)?;
        // Padding gets the lowest float added to its scores, so softmax gives it no weight:
        // (1 - mask) * f32::MIN, shaped (batch, 1, 1, seq) to broadcast over heads and rows.
        let mask = mask.unsqueeze(1)?.unsqueeze(1)?.to_dtype(DType::F32)?;
        let bias = (mask.ones_like()? - &mask)?.broadcast_mul(&Tensor::new(f32::MIN, ids.device())?)?;
        for block in &self.blocks {
            x = self.block(block, &x, &bias)?;
        }
        Ok(x)
    }

    fn block(&self, b: &Block, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        // (batch, seq, hidden) -> (batch, heads, seq, head_dim), contiguous.
        let split = |t: Tensor| -> Result<Tensor> {
            let (batch, seq, _) = t.dims3()?;
            t.reshape((batch, seq, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous()
        };
        let q = split(b.query.forward(x)?)?;
        let k = split(b.key.forward(x)?)?;
        let v = split(b.value.forward(x)?)?;
        let scores = (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?.broadcast_add(bias)?;
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context = weights.matmul(&v)?.transpose(1, 2)?.contiguous()?.flatten_from(D::Minus2)?;
        let attended = b.attention_norm.forward(&(b.attention_out.forward(&context)? + x)?)?;
        let up = b.up.forward(&attended)?;
        let up = if self.tanh_gelu { up.gelu()? } else { up.gelu_erf()? };
        b.out_norm.forward(&(b.down.forward(&up)? + &attended)?)
    }
}
