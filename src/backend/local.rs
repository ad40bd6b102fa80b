//! The local backend: a GGUF model decoding under strictly's token mask.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Backend, BackendError, BranchPoint, Reply, SchemaSpec, TokenScores, Usage};
use crate::automaton::Grammar;
use crate::chat::{self, ChatMessage};
use crate::constraint::{AutomatonCache, TokenAutomaton};
use crate::decode::{self, DecodeOptions, Generation};
use crate::model::local::{LocalModel, Session};
use crate::schema::CompileOptions;

/// A KV cache after a prompt prefix, reused while the prefix matches.
struct PrefixCache {
    ids: Vec<u32>,
    session: Session,
}

/// Decodes locally; compiled schemas and the system-prompt KV cache are kept.
pub struct LocalBackend {
    model: Arc<LocalModel>,
    options: DecodeOptions,
    compile: CompileOptions,
    automata: Arc<AutomatonCache>,
    prefix: Mutex<Option<PrefixCache>>,
    /// Reuse the system prompt's KV cache across requests. Default true.
    pub prefix_cache: bool,
}

impl LocalBackend {
    /// A backend over a loaded model.
    pub fn new(model: Arc<LocalModel>, options: DecodeOptions) -> Self {
        Self {
            model,
            options,
            compile: CompileOptions::default(),
            automata: Arc::new(AutomatonCache::default()),
            prefix: Mutex::new(None),
            prefix_cache: true,
        }
    }

    /// The same backend compiling schemas with `compile` (default:
    /// [`CompileOptions::default`]).
    pub fn with_compile_options(mut self, compile: CompileOptions) -> Self {
        self.compile = compile;
        self
    }

    /// The model.
    pub fn local_model(&self) -> &Arc<LocalModel> {
        &self.model
    }

    /// The same backend keeping its compiled schemas in `cache` (default: a cache of its
    /// own), so several backends over one model can share one memory-capped cache.
    pub fn with_cache(mut self, cache: Arc<AutomatonCache>) -> Self {
        self.automata = cache;
        self
    }

    /// The compiled-schema cache.
    pub fn cache(&self) -> &Arc<AutomatonCache> {
        &self.automata
    }

    /// The token automaton for a schema, compiled once (see [`AutomatonCache`]).
    pub fn automaton(&self, schema: &SchemaSpec) -> Result<Arc<TokenAutomaton>, BackendError> {
        Ok(self.cached(&schema.schema)?.0)
    }

    /// The token automaton for a schema from the cache, or compiled and kept; and whether it
    /// came from the cache.
    pub fn cached(&self, schema: &serde_json::Value) -> Result<(Arc<TokenAutomaton>, bool), crate::schema::SchemaError> {
        self.automata.get_or_compile(schema, &self.compile, self.model.tokenizer().vocab())
    }

    /// Compiles a schema for this model's vocabulary, without caching it (see
    /// [`LocalBackend::cached`] for the cached path).
    pub fn compile(&self, schema: &serde_json::Value) -> Result<Arc<TokenAutomaton>, crate::schema::SchemaError> {
        let grammar = Grammar::compile(schema, &self.compile)?;
        Ok(Arc::new(TokenAutomaton::new(grammar, self.model.tokenizer().vocab().clone())))
    }

    /// Runs one generation under a compiled automaton with per-call options (the system
    /// prompt's KV cache is used as in [`LocalBackend::generate`]).
    pub fn generate_with(
        &self,
        messages: &[ChatMessage],
        automaton: &Arc<TokenAutomaton>,
        options: &DecodeOptions,
    ) -> Result<Generation, BackendError> {
        let tokenizer = self.model.tokenizer();
        let prompt = chat::render(tokenizer, messages).map_err(|e| BackendError::Model(e.into()))?;
        let (mut session, pending) = self.session_for(&prompt.ids, prompt.system_len)?;
        decode::generate(&mut session, &pending, tokenizer, automaton, options).map_err(decode_error)
    }

    /// [`LocalBackend::generate_with`], handing the output's bytes to `on_output` as they are
    /// decoded (see [`decode::generate_streaming`]; `Break` stops the decoding).
    pub fn generate_streaming(
        &self,
        messages: &[ChatMessage],
        automaton: &Arc<TokenAutomaton>,
        options: &DecodeOptions,
        on_output: &mut dyn FnMut(&[u8]) -> std::ops::ControlFlow<()>,
    ) -> Result<Generation, BackendError> {
        let tokenizer = self.model.tokenizer();
        let prompt = chat::render(tokenizer, messages).map_err(|e| BackendError::Model(e.into()))?;
        let (mut session, pending) = self.session_for(&prompt.ids, prompt.system_len)?;
        decode::generate_streaming(&mut session, &pending, tokenizer, automaton, options, on_output).map_err(decode_error)
    }

    /// A session positioned after the prompt's system turn, from the cache
    /// when it matches, and the ids still to feed.
    ///
    /// The system turn is fed as a batch of its own whether or not the cache is on, so a cache
    /// hit or miss never changes the output: a prompt fed whole runs other kernel shapes, and
    /// its logits can differ by more than a near-tie (0.63 at most on a 305-token prompt
    /// against 286 + 19 tokens, on a 2-core AVX2 machine).
    fn session_for(&self, ids: &[u32], system_len: usize) -> Result<(Session, Vec<u32>), BackendError> {
        let model_err = |e: crate::model::local::ModelError| decode_error(e.into());
        if system_len == 0 || system_len >= ids.len() {
            return Ok((self.model.session(), ids.to_vec()));
        }
        let prefix = &ids[..system_len];
        if !self.prefix_cache {
            let mut session = self.model.session();
            session.feed(prefix).map_err(model_err)?;
            return Ok((session, ids[system_len..].to_vec()));
        }
        let mut cache = self.prefix.lock().unwrap_or_else(|p| p.into_inner());
        if cache.as_ref().is_none_or(|c| c.ids != prefix) {
            let mut session = self.model.session();
            session.feed(prefix).map_err(model_err)?;
            *cache = Some(PrefixCache { ids: prefix.to_vec(), session });
        }
        let session = cache.as_ref().expect("just filled").session.fork().map_err(model_err)?;
        Ok((session, ids[system_len..].to_vec()))
    }

    /// Runs one generation, returning the raw decoding record.
    pub fn generate(&self, messages: &[ChatMessage], schema: &SchemaSpec) -> Result<Generation, BackendError> {
        let automaton = self.automaton(schema)?;
        let tokenizer = self.model.tokenizer();
        let prompt = chat::render(tokenizer, messages).map_err(|e| BackendError::Model(e.into()))?;
        let (mut session, pending) = self.session_for(&prompt.ids, prompt.system_len)?;
        decode::generate(&mut session, &pending, tokenizer, &automaton, &self.options).map_err(decode_error)
    }
}

impl Backend for LocalBackend {
    fn name(&self) -> &str {
        "local"
    }

    fn model(&self) -> &str {
        self.model.name()
    }

    fn runs_inline(&self) -> bool {
        true
    }

    async fn complete(&self, messages: &[ChatMessage], schema: &SchemaSpec) -> Result<Reply, BackendError> {
        let started = Instant::now();
        let generation = self.generate(messages, schema)?;
        let t = &generation.timings;
        tracing::debug!(
            prompt_tokens = generation.prompt_tokens,
            output_tokens = generation.tokens.len(),
            forced = generation.forced_tokens(),
            forward_passes = t.forward_passes,
            prefill_ms = t.prefill_ms,
            decode_ms = t.decode_ms,
            mask_ms = t.mask_ms,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "local generation"
        );
        let value: serde_json::Value =
            serde_json::from_str(&generation.text).map_err(|e| BackendError::Parse { message: e.to_string(), source: e })?;
        let mut offset = 0;
        let mut branches = Vec::new();
        for t in &generation.tokens {
            if !t.alternatives.is_empty() {
                branches.push(BranchPoint {
                    offset,
                    chosen: t.text.clone(),
                    alternatives: t.alternatives.iter().map(|a| (a.text.clone(), a.prob)).collect(),
                });
            }
            offset += self.model.tokenizer().vocab().token_bytes(t.token).len();
        }
        let usage = Usage {
            prompt_tokens: generation.prompt_tokens,
            completion_tokens: generation.tokens.len(),
            forced_tokens: generation.forced_tokens(),
            mask_ms: generation.timings.mask_ms,
        };
        Ok(Reply::Json {
            value,
            text: generation.text.clone(),
            usage,
            latency_ms: started.elapsed().as_secs_f64() * 1e3,
            scores: Some(TokenScores { branches, logprob: generation.tokens.iter().map(|t| t.logprob as f64).sum() }),
            billing: None,
        })
    }
}

/// A decoding error as the backend reports it: a request that does not fit (context, token cap)
/// is [`BackendError::TooLong`], anything else a model failure.
fn decode_error(e: decode::DecodeError) -> BackendError {
    use crate::constraint::ConstraintError;
    use crate::model::local::ModelError;
    match e {
        decode::DecodeError::Model(ModelError::ContextFull { .. }) | decode::DecodeError::Constraint(ConstraintError::TokenCap { .. }) => {
            BackendError::TooLong(e.to_string())
        }
        e => BackendError::Model(e.into()),
    }
}
