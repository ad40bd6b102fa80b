//! A Llama-family transformer (`llama`, `qwen2`) over GGUF weights, written
//! for what strictly does: one sequence at a time, on the CPU, with a mask
//! known before each step.
//!
//! It runs on candle's kernels (quantized matmuls, RoPE, RMS norm, softmax)
//! but arranges the work differently from candle-transformers'
//! `quantized_llama`, which it replaces:
//!
//! - **Fused projections.** Q, K and V are one quantized matrix, and so are
//!   the MLP's gate and up matrices: 4 matmul dispatches per layer instead of
//!   7. On 2 cores every dispatch is a thread-pool barrier.
//! - **Grouped-query attention without copies.** Query heads that share a KV
//!   head are stacked as rows of one matrix, so the KV cache is never
//!   repeated per head.
//! - **A growable KV cache written in place**, instead of concatenating the
//!   whole cache at every step. Forking a session copies it once.
//! - **A sparse output head.** When the constraint allows only a few tokens,
//!   only their rows of the output matrix are computed (see
//!   [`Weights::logits`]). Disallowed tokens get `-inf`, which the decoder's
//!   mask would have given them anyway.
//! - **A prompt kernel for Q8_0** ([`Linear`]): a prompt's rows are
//!   multiplied four at a time against two weight rows, bit for bit as
//!   candle's own kernel multiplies them one by one.
//! - **Quantized embeddings.** Token embeddings stay quantized and only the
//!   looked-up rows are expanded (candle-transformers expands the whole
//!   table: 113 MB of f32 for SmolLM2).
//!
//! `tests/service/llamacpp_logits.rs` checks the logits against llama.cpp's on the
//! same GGUF.

use std::borrow::Cow;

use candle_core::quantized::k_quants::{self, BlockQ4_0, BlockQ8_0, GgmlType};
use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{DType, Device, Module, Tensor, D};

use super::linear::Linear;

/// Positions the RoPE tables cover.
pub const MAX_POSITIONS: usize = 4096;

/// Shape parameters read from the GGUF metadata.
#[derive(Debug, Clone)]
pub(crate) struct Hparams {
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub eps: f32,
    /// NeoX-style RoPE (halves rotated together) rather than interleaved pairs.
    pub rope_neox: bool,
    pub rope_base: f32,
    pub context: usize,
}

impl Hparams {
    fn read(content: &gguf_file::Content, arch: &str) -> candle_core::Result<Self> {
        let get = |key: &str| {
            content
                .metadata
                .get(&format!("{arch}.{key}"))
                .ok_or_else(|| candle_core::Error::Msg(format!("GGUF metadata lacks `{arch}.{key}`")))
        };
        let n_embd = get("embedding_length")?.to_u32()? as usize;
        let n_head = get("attention.head_count")?.to_u32()? as usize;
        let n_kv_head = get("attention.head_count_kv").and_then(|v| v.to_u32()).map_or(n_head, |v| v as usize);
        let head_dim = n_embd / n_head;
        if let Ok(rope_dim) = get("rope.dimension_count").and_then(|v| v.to_u32()) {
            if rope_dim as usize != head_dim {
                candle_core::bail!("partial rotary embeddings ({rope_dim} of {head_dim} dimensions) are not supported");
            }
        }
        if n_head % n_kv_head != 0 {
            candle_core::bail!("{n_head} query heads cannot share {n_kv_head} KV heads evenly");
        }
        Ok(Self {
            n_layer: get("block_count")?.to_u32()? as usize,
            n_embd,
            n_head,
            n_kv_head,
            head_dim,
            eps: get("attention.layer_norm_rms_epsilon").and_then(|v| v.to_f32()).unwrap_or(1e-5),
            rope_neox: arch == "qwen2",
            rope_base: get("rope.freq_base").and_then(|v| v.to_f32()).unwrap_or(10_000.0),
            context: get("context_length").and_then(|v| v.to_u32()).map_or(MAX_POSITIONS, |v| v as usize).min(MAX_POSITIONS),
        })
    }
}

/// Several projections of the same input, fused into one matrix when their
/// formats allow it.
#[derive(Debug, Clone)]
enum Projections {
    /// One matmul; the output is split into these widths.
    Fused(Linear, Vec<usize>),
    Separate(Vec<Linear>),
}

impl Projections {
    fn new(parts: Vec<QTensor>) -> candle_core::Result<Self> {
        let dtype = parts[0].dtype();
        let cols = parts[0].shape().dims2()?.1;
        let fusable = parts.iter().all(|p| p.dtype() == dtype && p.shape().dims2().is_ok_and(|(_, c)| c == cols));
        if !fusable {
            return Ok(Self::Separate(parts.into_iter().map(Linear::new).collect::<Result<_, _>>()?));
        }
        // Rows of a quantized matrix are independent runs of blocks, so
        // stacking matrices is concatenating their bytes.
        let mut bytes = Vec::new();
        let mut widths = Vec::new();
        for p in &parts {
            bytes.extend_from_slice(&p.data()?);
            widths.push(p.shape().dims2()?.0);
        }
        let rows: usize = widths.iter().sum();
        let storage = QStorage::from_data(Cow::Owned(bytes), &Device::Cpu, dtype)?;
        Ok(Self::Fused(Linear::new(QTensor::new(storage, (rows, cols))?)?, widths))
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        match self {
            Self::Fused(m, widths) => {
                let y = m.forward(x)?;
                let mut start = 0;
                widths
                    .iter()
                    .map(|&w| {
                        let part = y.narrow(D::Minus1, start, w);
                        start += w;
                        part
                    })
                    .collect()
            }
            Self::Separate(ms) => ms.iter().map(|m| m.forward(x)).collect(),
        }
    }
}

#[derive(Debug, Clone)]
struct Layer {
    attn_norm: Tensor,
    qkv: Projections,
    qkv_bias: Option<[Tensor; 3]>,
    wo: Linear,
    ffn_norm: Tensor,
    gate_up: Projections,
    down: Linear,
}

/// The output matrix, kept in a form whose rows can be dotted one by one.
#[derive(Debug, Clone)]
enum Head {
    Q4_0(Vec<BlockQ4_0>),
    Q8_0(Vec<BlockQ8_0>),
    /// Other formats: always the whole matrix.
    Dense(QMatMul),
}

/// Copies a CPU quantized tensor's blocks into a typed vector.
fn blocks<T: GgmlType>(t: &QTensor) -> candle_core::Result<Vec<T>> {
    let data = t.data()?;
    let size = std::mem::size_of::<T>();
    if data.len() % size != 0 {
        candle_core::bail!("{} bytes are not whole {:?} blocks", data.len(), t.dtype());
    }
    let mut out: Vec<T> = (0..data.len() / size).map(|_| T::zeros()).collect();
    // SAFETY: `T` is a plain `repr(C)` block of integers and f16s, the
    // destination holds exactly `data.len()` bytes, and the regions are distinct.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), out.as_mut_ptr().cast::<u8>(), data.len()) };
    Ok(out)
}

impl Head {
    fn new(t: QTensor) -> candle_core::Result<Self> {
        Ok(match t.dtype() {
            GgmlDType::Q4_0 => Self::Q4_0(blocks(&t)?),
            GgmlDType::Q8_0 => Self::Q8_0(blocks(&t)?),
            _ => Self::Dense(QMatMul::from_qtensor(t)?),
        })
    }

    fn logits(&self, hidden: &Tensor, vocab: usize, allowed: Option<&[u32]>) -> candle_core::Result<Vec<f32>> {
        let x = hidden.flatten_all()?.to_vec1::<f32>()?;
        match self {
            Self::Q4_0(rows) => Ok(rows_logits(rows, &x, vocab, allowed)),
            Self::Q8_0(rows) => Ok(rows_logits(rows, &x, vocab, allowed)),
            Self::Dense(m) => m.forward(hidden)?.flatten_all()?.to_vec1::<f32>(),
        }
    }
}

/// Logits of every row, or of the `allowed` rows only (the rest `-inf`).
fn rows_logits<T: GgmlType<VecDotType = BlockQ8_0>>(rows: &[T], x: &[f32], vocab: usize, allowed: Option<&[u32]>) -> Vec<f32> {
    let k = x.len();
    let mut out = vec![0.0f32; vocab];
    match allowed {
        None => {
            k_quants::matmul::<T>((1, k, vocab), x, rows, &mut out).expect("shapes checked at load");
        }
        Some(ids) => {
            let per_row = k / T::BLCK_SIZE;
            let mut q: Vec<BlockQ8_0> = (0..per_row).map(|_| BlockQ8_0::zeros()).collect();
            BlockQ8_0::from_float(x, &mut q);
            out.fill(f32::NEG_INFINITY);
            for &id in ids {
                let id = id as usize;
                out[id] = T::vec_dot(k, &rows[id * per_row..(id + 1) * per_row], &q);
            }
        }
    }
    out
}

/// The model's weights and the tables derived from them. Immutable once
/// loaded; a [`KvCache`] holds the state of one sequence.
#[derive(Debug)]
pub(crate) struct Weights {
    pub hp: Hparams,
    embed: QTensor,
    layers: Vec<Layer>,
    norm: Tensor,
    head: Head,
    vocab: usize,
    cos: Tensor,
    sin: Tensor,
}

impl Weights {
    /// Builds the model from a GGUF's tensors. `load` reads one tensor by
    /// name (re-quantizing it if the caller wants).
    pub fn from_gguf(
        content: &gguf_file::Content,
        arch: &str,
        mut load: impl FnMut(&str) -> candle_core::Result<QTensor>,
    ) -> candle_core::Result<Self> {
        let hp = Hparams::read(content, arch)?;
        let has = |name: &str| content.tensor_infos.contains_key(name);
        let vector = |t: QTensor| t.dequantize(&Device::Cpu);
        let embed = load("token_embd.weight")?;
        let vocab = embed.shape().dims2()?.0;
        let head = if has("output.weight") { load("output.weight")? } else { load("token_embd.weight")? };
        let mut layers = Vec::with_capacity(hp.n_layer);
        for i in 0..hp.n_layer {
            let mut w = |name: &str| load(&format!("blk.{i}.{name}"));
            let qkv_bias = if has(&format!("blk.{i}.attn_q.bias")) {
                Some([vector(w("attn_q.bias")?)?, vector(w("attn_k.bias")?)?, vector(w("attn_v.bias")?)?])
            } else {
                None
            };
            layers.push(Layer {
                attn_norm: vector(w("attn_norm.weight")?)?,
                qkv: Projections::new(vec![w("attn_q.weight")?, w("attn_k.weight")?, w("attn_v.weight")?])?,
                qkv_bias,
                wo: Linear::new(w("attn_output.weight")?)?,
                ffn_norm: vector(w("ffn_norm.weight")?)?,
                gate_up: Projections::new(vec![w("ffn_gate.weight")?, w("ffn_up.weight")?])?,
                down: Linear::new(w("ffn_down.weight")?)?,
            });
        }
        let norm = vector(load("output_norm.weight")?)?;
        let (cos, sin) = rope_tables(hp.head_dim, hp.rope_base, hp.context)?;
        Ok(Self { hp, embed, layers, norm, head: Head::new(head)?, vocab, cos, sin })
    }

    /// Feeds `tokens` at the cache's position and returns the logits after
    /// the last one: all of them, or only those of `allowed` (the others are
    /// `-inf`).
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache, allowed: Option<&[u32]>) -> candle_core::Result<Vec<f32>> {
        let x = self.hidden(tokens, cache)?;
        let s = tokens.len();
        let last = x.narrow(1, s - 1, 1)?;
        let last = candle_nn::ops::rms_norm(&last, &self.norm, self.hp.eps)?;
        self.head.logits(&last, self.vocab, allowed)
    }

    /// Like [`forward`](Self::forward), but keeps the final hidden state after every fed
    /// token; [`logits_at`](Self::logits_at) turns any of them into logits. Speculative
    /// decoding checks a whole draft in one pass and needs the logits only up to the first
    /// guess the model rejects.
    pub fn forward_hidden(&self, tokens: &[u32], cache: &mut KvCache) -> candle_core::Result<Tensor> {
        let x = self.hidden(tokens, cache)?;
        candle_nn::ops::rms_norm(&x, &self.norm, self.hp.eps)
    }

    /// The logits after token `i` of a [`forward_hidden`](Self::forward_hidden) pass.
    pub fn logits_at(&self, hidden: &Tensor, i: usize, allowed: Option<&[u32]>) -> candle_core::Result<Vec<f32>> {
        self.head.logits(&hidden.narrow(1, i, 1)?, self.vocab, allowed)
    }

    /// The last layer's output for each fed token, before the final norm; the tokens
    /// join the cache.
    fn hidden(&self, tokens: &[u32], cache: &mut KvCache) -> candle_core::Result<Tensor> {
        let s = tokens.len();
        let pos = cache.len;
        cache.reserve(self, pos + s)?;
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut x = self.embed.embedding(&ids)?.unsqueeze(0)?; // (1, s, n_embd)
        let mask = (s > 1).then(|| causal_mask(s, pos, self.hp.n_head / self.hp.n_kv_head)).transpose()?;
        let cos = self.cos.narrow(0, pos, s)?;
        let sin = self.sin.narrow(0, pos, s)?;
        for (layer, (k_buf, v_buf)) in self.layers.iter().zip(cache.layers.iter()) {
            let h = candle_nn::ops::rms_norm(&x, &layer.attn_norm, self.hp.eps)?;
            let attn = self.attention(layer, &h, k_buf, v_buf, pos, &cos, &sin, mask.as_ref())?;
            x = (x + attn)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, self.hp.eps)?;
            let gu = layer.gate_up.forward(&h)?;
            let act = (candle_nn::ops::silu(&gu[0])? * &gu[1])?;
            x = (x + layer.down.forward(&act)?)?;
        }
        cache.len += s;
        Ok(x)
    }

    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        layer: &Layer,
        h: &Tensor,
        k_buf: &Tensor,
        v_buf: &Tensor,
        pos: usize,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let Hparams { n_head, n_kv_head, head_dim, n_embd, .. } = self.hp;
        let (_, s, _) = h.dims3()?;
        let mut qkv = layer.qkv.forward(h)?;
        if let Some(bias) = &layer.qkv_bias {
            for (t, b) in qkv.iter_mut().zip(bias) {
                *t = t.broadcast_add(b)?;
            }
        }
        let heads = |t: &Tensor, n: usize| t.reshape((1, s, n, head_dim))?.transpose(1, 2)?.contiguous();
        let rope = |t: &Tensor| {
            if self.hp.rope_neox {
                candle_nn::rotary_emb::rope(t, cos, sin)
            } else {
                candle_nn::rotary_emb::rope_i(t, cos, sin)
            }
        };
        let scale = 1.0 / (head_dim as f64).sqrt();
        let q = (rope(&heads(&qkv[0], n_head)?)? * scale)?;
        let k = rope(&heads(&qkv[1], n_kv_head)?)?;
        let v = heads(&qkv[2], n_kv_head)?;
        k_buf.slice_set(&k, 2, pos)?;
        v_buf.slice_set(&v, 2, pos)?;
        let len = pos + s;
        let keys = k_buf.narrow(2, 0, len)?;
        let values = v_buf.narrow(2, 0, len)?;
        // The query heads of one KV group become rows of one matrix.
        let group = n_head / n_kv_head;
        let q = q.reshape((1, n_kv_head, group * s, head_dim))?;
        let scores = q.matmul(&keys.t()?)?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let y = probs.matmul(&values)?; // (1, n_kv, group * s, head_dim)
        let y = y.reshape((1, n_head, s, head_dim))?.transpose(1, 2)?.reshape((1, s, n_embd))?;
        layer.wo.forward(&y)
    }
}

/// Additive causal mask for `s` new positions after `pos` cached ones,
/// repeated for the `group` query heads stacked per KV head.
fn causal_mask(s: usize, pos: usize, group: usize) -> candle_core::Result<Tensor> {
    let len = pos + s;
    let mut m = vec![0.0f32; group * s * len];
    for g in 0..group {
        for i in 0..s {
            let row = &mut m[(g * s + i) * len..(g * s + i + 1) * len];
            row[pos + i + 1..].fill(f32::NEG_INFINITY);
        }
    }
    Tensor::from_vec(m, (group * s, len), &Device::Cpu)
}

fn rope_tables(head_dim: usize, base: f32, positions: usize) -> candle_core::Result<(Tensor, Tensor)> {
    let half = head_dim / 2;
    let mut angles = Vec::with_capacity(positions * half);
    for p in 0..positions {
        for i in 0..half {
            angles.push(p as f32 / base.powf(2.0 * i as f32 / head_dim as f32));
        }
    }
    let angles = Tensor::from_vec(angles, (positions, half), &Device::Cpu)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// The keys and values of one sequence, per layer, in buffers that grow by
/// doubling and are written in place.
#[derive(Debug)]
pub(crate) struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    len: usize,
    capacity: usize,
}

impl KvCache {
    pub fn new() -> Self {
        Self { layers: Vec::new(), len: 0, capacity: 0 }
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Forgets every position from `len` on (the buffers are overwritten in place later).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Makes room for `needed` positions in total.
    pub fn reserve(&mut self, w: &Weights, needed: usize) -> candle_core::Result<()> {
        if needed <= self.capacity && !self.layers.is_empty() {
            return Ok(());
        }
        let capacity = needed.max(self.capacity * 2).max(64).min(w.hp.context.max(needed));
        self.resize(w.hp.n_layer, w.hp.n_kv_head, w.hp.head_dim, capacity)
    }

    fn resize(&mut self, n_layer: usize, n_kv_head: usize, head_dim: usize, capacity: usize) -> candle_core::Result<()> {
        let fresh = || Tensor::zeros((1, n_kv_head, capacity, head_dim), DType::F32, &Device::Cpu);
        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let (k, v) = (fresh()?, fresh()?);
            if let Some((old_k, old_v)) = self.layers.get(i) {
                if self.len > 0 {
                    k.slice_set(&old_k.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                    v.slice_set(&old_v.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                }
            }
            layers.push((k, v));
        }
        self.layers = layers;
        self.capacity = capacity;
        Ok(())
    }

    /// An independent copy holding the same positions (the buffers are
    /// written in place, so sharing them would let one fork overwrite
    /// another's tail).
    pub fn fork(&self) -> candle_core::Result<Self> {
        let mut copy = Self { layers: self.layers.clone(), len: self.len, capacity: self.capacity };
        if let Some((k, _)) = self.layers.first() {
            let (_, n_kv_head, _, head_dim) = k.dims4()?;
            copy.resize(self.layers.len(), n_kv_head, head_dim, self.len.max(64))?;
        }
        Ok(copy)
    }
}
