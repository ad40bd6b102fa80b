//! The model's weight matrices, and a prompt kernel for Q8_0 ones.
//!
//! A prompt's forward pass multiplies every weight matrix by one row per
//! prompt token. candle's CPU kernel for Q8_0 (`k_quants::matmul`, the path it
//! takes on CPUs without VNNI and, with VNNI, whenever a row's length is not a
//! multiple of 256) computes each (token, weight row) dot product on its own:
//! per 32-value block it loads both blocks, converts both f16 scales and
//! multiplies them. That is most of a prompt's time.
//!
//! [`Linear`] keeps candle's kernels for one row (decoding) and for every
//! other case, and takes a prompt's Q8_0 products itself, four tokens by two
//! weight rows at a time, so each block loaded and each scale converted serves
//! four or eight products instead of one. Each product is computed with the
//! same operations in the same order as candle's AVX2 `vec_dot_q8_0_q8_0`
//! (exact 8-bit products summed to 32-bit lanes, one fused multiply-add per
//! block and lane, the same horizontal sum), so the logits are bit for bit
//! those candle gives. The tests below compare the two on the same weights.

use candle_core::quantized::{k_quants, GgmlDType, QMatMul, QTensor};
use candle_core::{CpuStorage, DType, Device, Module, Storage, Tensor};

/// Bytes of one Q8_0 block: an f16 scale, then 32 signed 8-bit values.
const BLOCK_BYTES: usize = 34;
/// Values per Q8_0 block.
const BLOCK: usize = 32;
/// Tokens per work item handed to candle's thread pool (a multiple of the
/// kernel's four).
const TOKENS_PER_ITEM: usize = 16;
/// Weight rows per work item (a multiple of the kernel's two).
const ROWS_PER_ITEM: usize = 16;

/// A weight matrix, `(n, k)`, multiplied from the right by `(…, k)` inputs.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    matmul: QMatMul,
    /// Whether a many-row input takes [`prompt_matmul`] rather than candle.
    prompt_kernel: bool,
}

impl Linear {
    pub fn new(t: QTensor) -> candle_core::Result<Self> {
        let prompt_kernel = t.dtype() == GgmlDType::Q8_0
            && t.shape().dims2().is_ok_and(|(n, k)| n % 2 == 0 && k % BLOCK == 0 && !candle_repacks(k))
            && avx2::available();
        Ok(Self { matmul: QMatMul::from_qtensor(t)?, prompt_kernel })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let rows = x.elem_count() / x.dim(candle_core::D::Minus1)?;
        match &self.matmul {
            QMatMul::QTensor(w) if self.prompt_kernel && rows > 1 && x.dtype() == DType::F32 => prompt_forward(w, x),
            m => m.forward(x),
        }
    }
}

/// Whether candle multiplies this Q8_0 matrix with its own VNNI kernel
/// (repacked weights, `vpdpbusd`): it does when the CPU has AVX-VNNI or
/// AVX512-VNNI and a row splits into 256-value blocks. Those stay candle's.
fn candle_repacks(k: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        k % 256 == 0
            && (std::arch::is_x86_feature_detected!("avxvnni")
                || (std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vnni")))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = k;
        true
    }
}

fn prompt_forward(w: &QTensor, x: &Tensor) -> candle_core::Result<Tensor> {
    let (n, k) = w.shape().dims2()?;
    let x = x.contiguous()?;
    let mut dims = x.dims().to_vec();
    let m = x.elem_count() / k;
    let out = {
        let (storage, layout) = x.storage_and_layout();
        let Storage::Cpu(CpuStorage::F32(data)) = &*storage else {
            candle_core::bail!("the Q8_0 prompt kernel takes f32 inputs on the CPU")
        };
        let lhs = &data[layout.start_offset()..layout.start_offset() + m * k];
        prompt_matmul(&w.data()?, lhs, m, k, n)
    };
    *dims.last_mut().expect("a matrix input has dimensions") = n;
    Tensor::from_vec(out, dims, &Device::Cpu)
}

/// `lhs (m, k) · weightsᵀ` for Q8_0 `weights` of `n` rows of `k` values.
/// The inputs are quantized to Q8_0 as candle quantizes them.
fn prompt_matmul(weights: &[u8], lhs: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let blocks = k / BLOCK;
    assert_eq!(weights.len(), n * blocks * BLOCK_BYTES, "weights of {n} rows of {k} values");
    // Rows past `m` up to a multiple of 4 stay zero; their results are dropped.
    let padded = m.div_ceil(4) * 4;
    let mut quantized = vec![<k_quants::BlockQ8_0 as k_quants::GgmlType>::zeros(); padded * blocks];
    for (row, q) in lhs.chunks_exact(k).zip(quantized.chunks_exact_mut(blocks)) {
        <k_quants::BlockQ8_0 as k_quants::GgmlType>::from_float(row, q);
    }
    let lhs_q = as_bytes(&quantized);
    let mut out = vec![0.0f32; padded * n];
    let out_addr = out.as_mut_ptr() as usize;
    let token_items = padded.div_ceil(TOKENS_PER_ITEM);
    let row_items = n.div_ceil(ROWS_PER_ITEM);
    candle_core::utils::barrier_pool().execute_chunked(token_items * row_items, |items| {
        for item in items {
            let tokens = (item / row_items) * TOKENS_PER_ITEM..padded.min((item / row_items + 1) * TOKENS_PER_ITEM);
            let rows = (item % row_items) * ROWS_PER_ITEM..n.min((item % row_items + 1) * ROWS_PER_ITEM);
            for row in rows.step_by(2) {
                let w = &weights[row * blocks * BLOCK_BYTES..(row + 2) * blocks * BLOCK_BYTES];
                for token in tokens.clone().step_by(4) {
                    let a = &lhs_q[token * blocks * BLOCK_BYTES..(token + 4) * blocks * BLOCK_BYTES];
                    // SAFETY: `available()` held when this matrix chose the kernel, and
                    // the slices hold two weight rows and four input rows of `blocks` blocks.
                    let dots = unsafe { avx2::tile(w, a, blocks) };
                    for (t, row_dots) in dots.iter().enumerate() {
                        // SAFETY: every (token, row) pair belongs to exactly one work item,
                        // so no two workers write the same element, and `out` outlives the
                        // pool's call.
                        unsafe {
                            let at = (out_addr as *mut f32).add((token + t) * n + row);
                            *at = row_dots[0];
                            *at.add(1) = row_dots[1];
                        }
                    }
                }
            }
        }
    });
    out.truncate(m * n);
    out
}

fn as_bytes(blocks: &[k_quants::BlockQ8_0]) -> &[u8] {
    const { assert!(std::mem::size_of::<k_quants::BlockQ8_0>() == BLOCK_BYTES) };
    // SAFETY: `BlockQ8_0` is `repr(C)`, 34 bytes of plain data with no padding
    // (its f16 then its 32 i8s), so its blocks read as bytes.
    unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast::<u8>(), std::mem::size_of_val(blocks)) }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::BLOCK_BYTES;

    pub fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
    }

    /// A block's f16 scale, as f32 (exactly).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn scale(block: *const u8) -> f32 {
        let bits = unsafe { std::ptr::read_unaligned(block.cast::<u16>()) };
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
    }

    /// A block's 32 values.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn values(block: *const u8) -> __m256i {
        unsafe { _mm256_loadu_si256(block.add(2).cast::<__m256i>()) }
    }

    /// candle's `hsum_float_8`, step for step.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum(x: __m256) -> f32 {
        let res = _mm256_extractf128_ps(x, 1);
        let res = _mm_add_ps(res, _mm256_castps256_ps128(x));
        let res = _mm_add_ps(res, _mm_movehl_ps(res, res));
        let res = _mm_add_ss(res, _mm_movehdup_ps(res));
        _mm_cvtss_f32(res)
    }

    /// The dot products of four input rows (`a`) with two weight rows (`w`),
    /// each `blocks` Q8_0 blocks: `[token][row]`.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C; `w` holds 2 and `a` 4 rows of `blocks` blocks.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn tile(w: &[u8], a: &[u8], blocks: usize) -> [[f32; 2]; 4] {
        let stride = blocks * BLOCK_BYTES;
        assert!(w.len() >= 2 * stride && a.len() >= 4 * stride);
        let (w0, w1) = (w.as_ptr(), unsafe { w.as_ptr().add(stride) });
        let a0 = a.as_ptr();
        let (a1, a2, a3) = unsafe { (a0.add(stride), a0.add(2 * stride), a0.add(3 * stride)) };
        let ones = _mm256_set1_epi16(1);
        let z = _mm256_setzero_ps();
        let (mut c00, mut c01, mut c10, mut c11) = (z, z, z, z);
        let (mut c20, mut c21, mut c30, mut c31) = (z, z, z, z);
        for b in 0..blocks {
            let at = b * BLOCK_BYTES;
            // SAFETY: `at` is inside each row (asserted lengths above).
            unsafe {
                let (x0, x1) = (values(w0.add(at)), values(w1.add(at)));
                let (d0, d1) = (scale(w0.add(at)), scale(w1.add(at)));
                // candle's mul_sum_i8_pairs_float: |x| times y with x's sign,
                // pairs of 8-bit products to 16 bits, pairs of those to 32.
                let (ax0, ax1) = (_mm256_sign_epi8(x0, x0), _mm256_sign_epi8(x1, x1));
                macro_rules! dot {
                    ($ax:expr, $x:expr, $y:expr) => {
                        _mm256_cvtepi32_ps(_mm256_madd_epi16(ones, _mm256_maddubs_epi16($ax, _mm256_sign_epi8($y, $x))))
                    };
                }
                macro_rules! token {
                    ($a:expr, $c0:ident, $c1:ident) => {{
                        let y = values($a.add(at));
                        let dy = scale($a.add(at));
                        $c0 = _mm256_fmadd_ps(_mm256_set1_ps(d0 * dy), dot!(ax0, x0, y), $c0);
                        $c1 = _mm256_fmadd_ps(_mm256_set1_ps(d1 * dy), dot!(ax1, x1, y), $c1);
                    }};
                }
                token!(a0, c00, c01);
                token!(a1, c10, c11);
                token!(a2, c20, c21);
                token!(a3, c30, c31);
            }
        }
        [[hsum(c00), hsum(c01)], [hsum(c10), hsum(c11)], [hsum(c20), hsum(c21)], [hsum(c30), hsum(c31)]]
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    pub fn available() -> bool {
        false
    }

    pub unsafe fn tile(_: &[u8], _: &[u8], _: usize) -> [[f32; 2]; 4] {
        unreachable!("the prompt kernel is chosen on x86-64 only")
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use candle_core::quantized::QStorage;

    use super::*;

    /// A small deterministic generator, so a failure names its case.
    fn numbers(seed: u64, len: usize) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
            })
            .collect()
    }

    fn quantized(n: usize, k: usize, seed: u64) -> QTensor {
        let w = Tensor::from_vec(numbers(seed, n * k), (n, k), &Device::Cpu).unwrap();
        QTensor::quantize(&w, GgmlDType::Q8_0).unwrap()
    }

    fn assert_same_bits(ours: &Tensor, candle: &Tensor, case: &str) {
        let (ours, candle) =
            (ours.flatten_all().unwrap().to_vec1::<f32>().unwrap(), candle.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        assert_eq!(ours.len(), candle.len(), "{case}");
        for (i, (a, b)) in ours.iter().zip(&candle).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "{case}: element {i}: {a} here, {b} from candle");
        }
    }

    #[test]
    fn prompt_products_are_candles_bit_for_bit() {
        if !avx2::available() {
            eprintln!("no AVX2, FMA and F16C here: the prompt kernel is never chosen");
            return;
        }
        // Token counts around the kernel's 4 and the work item's 16; row counts around 2 and 16;
        // SmolLM2's row lengths (576, 1536) and short ones.
        for (case, &(m, k, n)) in
            [(2, 32, 2), (3, 64, 6), (5, 576, 18), (16, 96, 34), (17, 576, 960), (40, 1536, 64), (7, 160, 2)].iter().enumerate()
        {
            let w = quantized(n, k, case as u64);
            let linear = Linear::new(w).unwrap();
            assert!(linear.prompt_kernel || candle_repacks(k), "case {case}: Q8_0 ({n}, {k}) takes the prompt kernel");
            let x = Tensor::from_vec(numbers(100 + case as u64, m * k), (1, m, k), &Device::Cpu).unwrap();
            let ours = linear.forward(&x).unwrap();
            let candle = linear.matmul.forward(&x).unwrap();
            assert_eq!(ours.dims(), &[1, m, n]);
            assert_same_bits(&ours, &candle, &format!("case {case}: ({m}, {k}) x ({n}, {k})"));
        }
    }

    /// Weights of -128, which llama.cpp's quantizer never writes but a file may
    /// hold: candle takes their magnitude as 128, and so must the kernel.
    #[test]
    fn weights_of_minus_128_multiply_as_candle_multiplies_them() {
        if !avx2::available() {
            eprintln!("no AVX2, FMA and F16C here: the prompt kernel is never chosen");
            return;
        }
        let (m, k, n) = (6, 64, 4);
        let mut bytes = Vec::new();
        for row in 0..n {
            for block in 0..k / BLOCK {
                bytes.extend_from_slice(&(0x3000u16 + (row * 7 + block) as u16).to_le_bytes()); // small positive f16 scales
                bytes.extend((0..BLOCK).map(|i| if (i + row) % 3 == 0 { 0x80u8 } else { (i as u8).wrapping_mul(37) }));
            }
        }
        let storage = QStorage::from_data(Cow::Owned(bytes), &Device::Cpu, GgmlDType::Q8_0).unwrap();
        let w = QTensor::new(storage, (n, k)).unwrap();
        let x = Tensor::from_vec(numbers(7, m * k), (m, k), &Device::Cpu).unwrap();
        let linear = Linear::new(w).unwrap();
        assert!(linear.prompt_kernel);
        let (ours, candle) = (linear.forward(&x).unwrap(), linear.matmul.forward(&x).unwrap());
        assert_same_bits(&ours, &candle, "weights holding -128");
    }
}
