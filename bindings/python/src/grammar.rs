//! `strictly.Grammar` and `strictly.SchemaError`.

use std::sync::{Arc, Mutex, Weak};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use strictly::automaton::Grammar;
use strictly::constraint::TokenAutomaton;
use strictly::schema::{CompileOptions, SchemaError, UnknownKeywords};
use strictly::vocab::Vocabulary;

pyo3::create_exception!(
    strictly,
    PySchemaError,
    PyValueError,
    "A schema strictly cannot enforce exactly, or that is not a valid JSON Schema. `.keyword` is the keyword at fault (None when there is none), `.pointer` the JSON pointer of the schema object that holds it (\"\" is the root), `.kind` a short label such as `unsupported:not`, and `str(err)` the message the CLI gives."
);

fn schema_error(py: Python<'_>, err: &SchemaError) -> PyErr {
    let message = err.to_string();
    let e = PySchemaError::new_err(message.clone());
    let value = e.value(py);
    let set = || -> PyResult<()> {
        value.setattr("message", message)?;
        value.setattr("keyword", err.keyword())?;
        value.setattr("pointer", err.pointer())?;
        value.setattr("kind", err.label())?;
        Ok(())
    };
    match set() {
        Ok(()) => e,
        Err(other) => other,
    }
}

/// A compiled JSON Schema. Joined with a vocabulary by [`Matcher`](crate::matcher::PyMatcher);
/// the token masks are cached per (grammar, vocabulary), so every matcher over the same pair
/// shares them.
#[pyclass(frozen, name = "Grammar", module = "strictly")]
pub struct PyGrammar {
    grammar: Grammar,
    automata: Mutex<Vec<(Weak<Vocabulary>, Arc<TokenAutomaton>)>>,
}

impl PyGrammar {
    /// The automaton over `vocab`, made on first use.
    pub(crate) fn automaton(&self, vocab: &Arc<Vocabulary>) -> Arc<TokenAutomaton> {
        let mut automata = self.automata.lock().unwrap_or_else(|p| p.into_inner());
        automata.retain(|(v, _)| v.strong_count() > 0);
        if let Some((_, a)) = automata.iter().find(|(v, _)| v.upgrade().is_some_and(|v| Arc::ptr_eq(&v, vocab))) {
            return a.clone();
        }
        let a = Arc::new(TokenAutomaton::new(self.grammar.clone(), vocab.clone()));
        automata.push((Arc::downgrade(vocab), a.clone()));
        a
    }
}

#[pymethods]
impl PyGrammar {
    /// Compiles a JSON Schema (a JSON string, or a dict as `json.loads` gives it).
    ///
    /// `unknown_keywords` is `"ignore"` (keywords outside JSON Schema are annotations, as
    /// validators read them) or `"deny"`. `whitespace` allows up to that many bytes of
    /// whitespace between tokens (default: compact JSON only). Raises `SchemaError`.
    #[staticmethod]
    #[pyo3(signature = (schema, *, unknown_keywords="ignore", whitespace=None))]
    fn from_json_schema(py: Python<'_>, schema: &Bound<'_, PyAny>, unknown_keywords: &str, whitespace: Option<usize>) -> PyResult<Self> {
        let text: String = if let Ok(s) = schema.cast::<PyString>() {
            s.to_str()?.to_owned()
        } else if schema.is_instance_of::<pyo3::types::PyDict>() || schema.is_instance_of::<pyo3::types::PyBool>() {
            py.import("json")?.call_method1("dumps", (schema,))?.extract()?
        } else {
            return Err(PyTypeError::new_err("schema must be a str (JSON) or a dict"));
        };
        let unknown_keywords = match unknown_keywords {
            "ignore" => UnknownKeywords::Ignore,
            "deny" => UnknownKeywords::Deny,
            other => return Err(PyValueError::new_err(format!("unknown_keywords must be \"ignore\" or \"deny\", not {other:?}"))),
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| PyValueError::new_err(format!("the schema is not JSON: {e}")))?;
        let options = CompileOptions { unknown_keywords, whitespace, ..CompileOptions::default() };
        let grammar = py.detach(|| Grammar::compile(&value, &options)).map_err(|e| schema_error(py, &e))?;
        Ok(Self { grammar, automata: Mutex::new(Vec::new()) })
    }

    /// Keywords read as annotations (unknown to JSON Schema), as `` `x-order` at `#/a` ``.
    #[getter]
    fn ignored_keywords(&self) -> Vec<String> {
        self.grammar.ignored_keywords().iter().map(ToString::to_string).collect()
    }

    /// Seconds the compilation took.
    #[getter]
    fn compile_time(&self) -> f64 {
        self.grammar.compile_time().as_secs_f64()
    }

    /// Whether `text` is a complete instance (compact JSON, or with the whitespace allowed).
    fn matches(&self, text: &[u8]) -> bool {
        self.grammar.matches(text)
    }

    fn __repr__(&self) -> String {
        format!("Grammar(nfa_states={})", self.grammar.nfa_states())
    }
}
