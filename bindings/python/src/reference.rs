//! The engine's own masks along a token walk, straight from the library's `Constraint` (no
//! matcher, no bitmask): the tests compare the bitmasks with them.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use strictly::constraint::{Constraint, ConstraintError};

use crate::grammar::PyGrammar;
use crate::vocab::PyVocabulary;

/// The allowed token ids before each token of `tokens` and after the last (the engine's
/// end-of-sequence token only; the other stop tokens are the matcher's). With `max_tokens`,
/// the masks within the budget left (`Constraint::mask_within_budget`).
#[pyfunction]
#[pyo3(signature = (grammar, vocabulary, tokens, max_tokens=None))]
pub fn _engine_masks(
    py: Python<'_>,
    grammar: &PyGrammar,
    vocabulary: &PyVocabulary,
    tokens: Vec<u32>,
    max_tokens: Option<usize>,
) -> PyResult<Vec<Vec<u32>>> {
    let automaton = grammar.automaton(&vocabulary.vocab);
    let error = |e: ConstraintError| PyValueError::new_err(e.to_string());
    py.detach(|| {
        let mut c = Constraint::new(automaton);
        let mut out = Vec::with_capacity(tokens.len() + 1);
        let mut mask = |c: &mut Constraint, taken: usize| -> PyResult<Vec<u32>> {
            Ok(match max_tokens {
                None => c.mask().map_err(error)?.iter().collect(),
                Some(cap) if taken < cap => c.mask_within_budget(cap - taken).map_err(error)?.iter().collect(),
                Some(_) => if c.is_accepting().map_err(error)? { c.automaton().vocab().eos().into_iter().collect() } else { Vec::new() },
            })
        };
        for (taken, &t) in tokens.iter().enumerate() {
            out.push(mask(&mut c, taken)?);
            c.advance(t).map_err(error)?;
        }
        out.push(mask(&mut c, tokens.len())?);
        Ok(out)
    })
}
