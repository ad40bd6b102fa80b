//! `strictly.Matcher`: one generation's cursor in xgrammar's matcher shape, and the batch fill.

use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use strictly::constraint::{Constraint, ConstraintError, TokenAutomaton, TokenSet};

use crate::bitmask::{self, Rows};
use crate::grammar::PyGrammar;
use crate::vocab::PyVocabulary;

fn engine_error(e: ConstraintError) -> PyErr {
    match e {
        ConstraintError::TokenCap { .. } => PyValueError::new_err(e.to_string()),
        _ => PyRuntimeError::new_err(e.to_string()),
    }
}

/// One generation's position in a grammar over a vocabulary.
///
/// `max_tokens` caps the tokens of the value: the masks then allow only tokens that leave
/// room to close it (one token per byte at worst; when none does, those that come closest),
/// and where even the shortest completion cannot fit in the tokens left, the constructor or
/// the fill raises `ValueError` rather than let the value be cut off.
#[pyclass(name = "Matcher", module = "strictly")]
pub struct PyMatcher {
    automaton: Arc<TokenAutomaton>,
    constraint: Constraint,
    eos: Option<u32>,
    /// The stop tokens other than the engine's end-of-sequence token.
    extra_stops: Vec<u32>,
    vocab_size: usize,
    max_tokens: Option<usize>,
}

impl PyMatcher {
    /// The allowed tokens now, without the extra stop tokens.
    fn mask(&mut self) -> Result<Arc<TokenSet>, ConstraintError> {
        if self.constraint.is_finished() {
            let mut only = TokenSet::new(self.vocab_size);
            self.eos.into_iter().for_each(|e| only.insert(e));
            return Ok(Arc::new(only));
        }
        match self.max_tokens {
            None => self.constraint.mask(),
            Some(cap) => {
                let left = cap.saturating_sub(self.constraint.steps());
                self.constraint.check_room(left, cap)?;
                if left == 0 {
                    let mut only = TokenSet::new(self.vocab_size);
                    if self.constraint.is_accepting()? {
                        self.eos.into_iter().for_each(|e| only.insert(e));
                    }
                    Ok(Arc::new(only))
                } else {
                    self.constraint.mask_within_budget(left).map(Arc::new)
                }
            }
        }
    }

    /// Fills one row (the GIL released by the caller).
    fn fill(&mut self, row: &mut [u32]) -> Result<bool, ConstraintError> {
        let mask = self.mask()?;
        Ok(bitmask::write(row, &mask, self.eos, &self.extra_stops, self.vocab_size))
    }
}

#[pymethods]
impl PyMatcher {
    #[new]
    #[pyo3(signature = (grammar, vocabulary, max_tokens=None))]
    fn new(py: Python<'_>, grammar: &PyGrammar, vocabulary: &PyVocabulary, max_tokens: Option<usize>) -> PyResult<Self> {
        let automaton = grammar.automaton(&vocabulary.vocab);
        let mut constraint = Constraint::new(automaton.clone());
        if let Some(cap) = max_tokens {
            py.detach(|| constraint.check_room(cap, cap)).map_err(|e| PyValueError::new_err(e.to_string()))?;
        }
        let eos = vocabulary.vocab.eos();
        let extra_stops = vocabulary.stops.iter().copied().filter(|&s| Some(s) != eos).collect();
        Ok(Self { automaton, constraint, eos, extra_stops, vocab_size: vocabulary.vocab.len(), max_tokens })
    }

    /// Writes the allowed next tokens into row `index` of `bitmask` (xgrammar's layout: int32,
    /// shape `[batch, ceil(vocab_size / 32)]`, bit set = allowed). Returns whether any token
    /// is disallowed. After a stop token only the stop tokens are allowed.
    #[pyo3(signature = (bitmask, index=0))]
    fn fill_next_token_bitmask(&mut self, py: Python<'_>, bitmask: &Bound<'_, PyAny>, index: usize) -> PyResult<bool> {
        let rows = Rows::get(bitmask, self.vocab_size)?;
        rows.check(index)?;
        // SAFETY: the index is checked; this call alone writes the row.
        let row = unsafe { rows.row(index) };
        py.detach(|| self.fill(row)).map_err(engine_error)
    }

    /// As `fill_next_token_bitmask`, returning the nanoseconds the mask and its row took inside
    /// the extension (no argument checks, no GIL release): the bench's measure of what the
    /// Python call adds.
    #[pyo3(signature = (bitmask, index=0))]
    fn _fill_timed(&mut self, bitmask: &Bound<'_, PyAny>, index: usize) -> PyResult<u64> {
        let rows = Rows::get(bitmask, self.vocab_size)?;
        rows.check(index)?;
        // SAFETY: as in `fill_next_token_bitmask`.
        let row = unsafe { rows.row(index) };
        let started = std::time::Instant::now();
        self.fill(row).map_err(engine_error)?;
        Ok(started.elapsed().as_nanos() as u64)
    }

    /// Accepts a token; False (and no change) when the grammar does not allow it here, when
    /// the generation has stopped, or when `max_tokens` are spent.
    fn accept_token(&mut self, py: Python<'_>, token_id: i64) -> PyResult<bool> {
        let Ok(id) = u32::try_from(token_id) else { return Ok(false) };
        if id as usize >= self.vocab_size || self.constraint.is_finished() {
            return Ok(false);
        }
        let id = if self.extra_stops.contains(&id) { self.eos.unwrap_or(id) } else { id };
        if Some(id) != self.eos && self.max_tokens.is_some_and(|cap| self.constraint.steps() >= cap) {
            return Ok(false);
        }
        match py.detach(|| self.constraint.advance(id)) {
            Ok(()) => Ok(true),
            Err(ConstraintError::Disallowed { .. }) => Ok(false),
            Err(e) => Err(engine_error(e)),
        }
    }

    /// Accepts text that need not be one token (counted as one step by `rollback` and
    /// `max_tokens`); False (and no change) when the grammar does not allow it here.
    fn accept_string(&mut self, py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<bool> {
        let bytes: Vec<u8> = match text.extract::<String>() {
            Ok(s) => s.into_bytes(),
            Err(_) => text.extract::<Vec<u8>>().map_err(|_| PyValueError::new_err("accept_string takes str or bytes"))?,
        };
        if self.constraint.is_finished() {
            return Ok(false);
        }
        py.detach(|| self.constraint.advance_bytes(&bytes)).map_err(engine_error)
    }

    /// Whether a stop token was accepted.
    fn is_terminated(&self) -> bool {
        self.constraint.is_finished()
    }

    /// Whether the text so far is a complete value (a stop token is allowed now).
    fn is_accepting(&mut self, py: Python<'_>) -> PyResult<bool> {
        py.detach(|| self.constraint.is_accepting()).map_err(engine_error)
    }

    /// Undoes the last `num_tokens` accepted tokens (a stop token included). Raises
    /// ValueError when fewer were accepted.
    fn rollback(&mut self, num_tokens: usize) -> PyResult<()> {
        self.constraint.rollback(num_tokens).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// Back to the start, as a new matcher (the masks computed so far stay cached).
    fn reset(&mut self) {
        self.constraint = Constraint::new(self.automaton.clone());
    }

    /// The text that must come next whatever the model does (`""` when there is a choice):
    /// a decoder appends it without sampling. Cut to whole UTF-8 characters.
    fn find_jump_forward_string(&mut self, py: Python<'_>) -> PyResult<String> {
        if self.constraint.is_finished() {
            return Ok(String::new());
        }
        let bytes = py.detach(|| self.constraint.forced_bytes()).map_err(engine_error)?;
        let text = match std::str::from_utf8(&bytes) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        };
        Ok(text.to_owned())
    }

    /// The bytes accepted so far.
    #[getter]
    fn text<'py>(&self, py: Python<'py>) -> Bound<'py, pyo3::types::PyBytes> {
        pyo3::types::PyBytes::new(py, self.constraint.bytes())
    }

    /// The tokens (and `accept_string` calls) accepted so far: how far `rollback` can go.
    #[getter]
    fn num_accepted(&self) -> usize {
        self.constraint.steps()
    }

    /// The vocabulary size the masks are for.
    #[getter]
    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
}

/// Fills row `indices[i]` of `bitmask` for `matchers[i]` (rows `0..len(matchers)` by default),
/// on up to one thread per core, with the GIL released. Returns, per matcher, whether any
/// token is disallowed.
#[pyfunction]
#[pyo3(signature = (matchers, bitmask, indices=None))]
pub fn fill_next_token_bitmasks(
    py: Python<'_>,
    matchers: Vec<Bound<'_, PyMatcher>>,
    bitmask: &Bound<'_, PyAny>,
    indices: Option<Vec<usize>>,
) -> PyResult<Vec<bool>> {
    let indices = indices.unwrap_or_else(|| (0..matchers.len()).collect());
    if indices.len() != matchers.len() {
        return Err(PyValueError::new_err(format!("{} matchers but {} indices", matchers.len(), indices.len())));
    }
    let Some(first) = matchers.first() else { return Ok(Vec::new()) };
    let vocab_size = first.borrow().vocab_size;
    let rows = Rows::get(bitmask, vocab_size)?;
    let mut seen = vec![false; rows.rows];
    for &i in &indices {
        rows.check(i)?;
        if std::mem::replace(&mut seen[i], true) {
            return Err(PyValueError::new_err(format!("row {i} is given twice")));
        }
    }
    let mut guards = Vec::with_capacity(matchers.len());
    for m in &matchers {
        let g = m.try_borrow_mut().map_err(|_| PyValueError::new_err("a matcher is given twice, or is in use"))?;
        if g.vocab_size != vocab_size {
            return Err(PyValueError::new_err("the matchers' vocabularies differ in size"));
        }
        guards.push(g);
    }
    let mut work: Vec<(&mut PyMatcher, usize)> = guards.iter_mut().map(|g| &mut **g).zip(indices).collect();
    let rows = &rows;
    let results: Vec<Result<bool, ConstraintError>> = py.detach(move || {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(work.len());
        // SAFETY (each `row` below): the indices are checked and distinct.
        if threads <= 1 {
            return work.iter_mut().map(|(m, i)| m.fill(unsafe { rows.row(*i) })).collect();
        }
        let chunk = work.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let mut parts = work.chunks_mut(chunk);
            let mine = parts.next().unwrap_or_default();
            let handles: Vec<_> = parts
                .map(|part| scope.spawn(move || part.iter_mut().map(|(m, i)| m.fill(unsafe { rows.row(*i) })).collect::<Vec<_>>()))
                .collect();
            let mut out: Vec<_> = mine.iter_mut().map(|(m, i)| m.fill(unsafe { rows.row(*i) })).collect();
            for h in handles {
                out.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
            out
        })
    });
    results.into_iter().map(|r| r.map_err(engine_error)).collect()
}
