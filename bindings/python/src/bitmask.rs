//! Token bitmasks in xgrammar's layout, written into caller-owned buffers.
//!
//! The layout: int32 words, shape `[batch, ceil(vocab_size / 32)]` (or one row, `[words]`),
//! C-contiguous; token `t` is bit `t % 32` of word `t / 32` of its row, set when allowed.
//! Any object with the buffer protocol (a numpy array; a CPU torch tensor's `.numpy()`) is
//! taken as is; an object with only `__dlpack__` is read through `numpy.from_dlpack`.

use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use strictly::vocab::TokenSet;

/// A writable int32 buffer of `rows` rows of `width` words, checked.
pub struct Rows {
    // Kept to hold the exporter's memory for as long as `ptr` is written.
    _buffer: PyUntypedBuffer,
    ptr: usize,
    pub rows: usize,
    pub width: usize,
}

impl Rows {
    /// Checks `obj` as a bitmask for a vocabulary of `vocab_size` tokens.
    pub fn get(obj: &Bound<'_, PyAny>, vocab_size: usize) -> PyResult<Self> {
        let buffer = match PyUntypedBuffer::get(obj) {
            Ok(b) => b,
            Err(e) if obj.hasattr("__dlpack__").unwrap_or(false) => {
                let array = obj.py().import("strictly._dlpack")?.call_method1("as_buffer", (obj,)).map_err(|dl| {
                    PyValueError::new_err(format!("the bitmask has no buffer ({e}) and DLPack failed: {dl}"))
                })?;
                PyUntypedBuffer::get(&array).map_err(|e| PyValueError::new_err(format!("the bitmask is not a buffer: {e}")))?
            }
            Err(e) => return Err(PyValueError::new_err(format!("the bitmask must be a writable int32 buffer (numpy array): {e}"))),
        };
        let format = buffer.format().to_bytes();
        let int32 = matches!(format, b"i" | b"<i" | b"=i" | b"@i" | b"I" | b"<I" | b"=I" | b"@I") && buffer.item_size() == 4;
        if !int32 {
            return Err(PyValueError::new_err(format!(
                "the bitmask must hold int32 (format 'i'), not format {:?} of {} bytes",
                String::from_utf8_lossy(format),
                buffer.item_size()
            )));
        }
        if buffer.readonly() {
            return Err(PyValueError::new_err("the bitmask is read-only"));
        }
        if !buffer.is_c_contiguous() {
            return Err(PyValueError::new_err("the bitmask must be C-contiguous"));
        }
        let words = vocab_size.div_ceil(32);
        let (rows, width) = match *buffer.shape() {
            [w] => (1, w),
            [r, w] => (r, w),
            ref other => return Err(PyValueError::new_err(format!("the bitmask must have 1 or 2 dimensions, not shape {other:?}"))),
        };
        if width < words {
            return Err(PyValueError::new_err(format!(
                "the bitmask rows have {width} words; a vocabulary of {vocab_size} tokens needs {words} (shape [batch, ceil(vocab_size / 32)])"
            )));
        }
        let ptr = buffer.buf_ptr() as usize;
        Ok(Self { _buffer: buffer, ptr, rows, width })
    }

    /// Checks a row index.
    pub fn check(&self, index: usize) -> PyResult<()> {
        if index < self.rows {
            Ok(())
        } else {
            Err(PyValueError::new_err(format!("index {index} is outside the bitmask's {} rows", self.rows)))
        }
    }

    /// The row's words. The caller checked the index, and no two callers hold the same row.
    ///
    /// # Safety
    /// The row is written while the GIL is released: another thread that writes the same
    /// memory at the same time races, as with any buffer shared between threads.
    pub unsafe fn row(&self, index: usize) -> &mut [u32] {
        std::slice::from_raw_parts_mut((self.ptr as *mut u32).add(index * self.width), self.width)
    }
}

/// Writes `mask` into `row`, with the extra stop tokens allowed where `eos` is, and every
/// word past the vocabulary cleared. Returns whether any token is disallowed.
pub fn write(row: &mut [u32], mask: &TokenSet, eos: Option<u32>, extra_stops: &[u32], vocab_size: usize) -> bool {
    let words = mask.words();
    for (i, out) in row.iter_mut().enumerate() {
        let w = words.get(i / 2).copied().unwrap_or(0);
        *out = (w >> (32 * (i % 2))) as u32;
    }
    if eos.is_some_and(|e| mask.contains(e)) {
        for &s in extra_stops {
            row[s as usize / 32] |= 1 << (s % 32);
        }
    }
    let full = vocab_size / 32;
    let some_off = row[..full].iter().any(|&w| w != u32::MAX);
    let tail = vocab_size % 32;
    some_off || (tail != 0 && row[full] != (1u32 << tail) - 1)
}
