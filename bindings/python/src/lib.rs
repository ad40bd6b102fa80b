//! The Python extension `strictly._strictly`: strictly's engine (JSON Schema → token masks)
//! in xgrammar's matcher shape. The package `strictly` (python/strictly) re-exports it.

mod bitmask;
mod grammar;
mod matcher;
mod reference;
mod vocab;

use pyo3::prelude::*;

#[pymodule]
fn _strictly(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<vocab::PyVocabulary>()?;
    m.add_class::<grammar::PyGrammar>()?;
    m.add_class::<matcher::PyMatcher>()?;
    m.add("SchemaError", m.py().get_type::<grammar::PySchemaError>())?;
    m.add_function(wrap_pyfunction!(matcher::fill_next_token_bitmasks, m)?)?;
    m.add_function(wrap_pyfunction!(reference::_engine_masks, m)?)?;
    Ok(())
}
