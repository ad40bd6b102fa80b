//! The three engines over one vocabulary: strictly's, llguidance's view of it
//! (a `TokTrie` over the same bytes) and outlines-core's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};
use outlines_core::index::Index;
use outlines_core::json_schema::regex_from_value;
use outlines_core::vocabulary::Vocabulary as OVocabulary;
use serde_json::{json, Value};

use strictly::automaton::Grammar;
use strictly::constraint::TokenAutomaton;
use strictly::schema::CompileOptions;
use strictly::tokenizer::GgufTokenizer;
use strictly::vocab::Vocabulary;

/// llguidance's view of strictly's vocabulary.
pub struct VocabEnv {
    trie: TokTrie,
}

impl TokenizerEnv for VocabEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }
    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        self.trie.greedy_tokenize(s)
    }
    // Greedy tokenization is not the model's: no token forcing, full masks.
    fn tokenize_is_canonical(&self) -> bool {
        false
    }
}

pub struct Engines {
    pub vocab: Arc<Vocabulary>,
    pub eos: u32,
    factory: ParserFactory,
    outlines_vocab: OVocabulary,
    /// One-off per-tokenizer setup, in ms (not part of any compile time).
    pub setup_ms: BTreeMap<&'static str, f64>,
}

impl Engines {
    pub fn load() -> Self {
        let path = strictly::model::resolve::resolve(None).expect("SmolLM2 GGUF (strictly::model::resolve)");
        let t0 = Instant::now();
        let tokenizer = GgufTokenizer::from_gguf(&path).expect("GGUF tokenizer");
        let vocab = tokenizer.vocab().clone();
        let strictly_ms = t0.elapsed().as_secs_f64() * 1e3;
        let eos = vocab.eos().expect("EOS");
        let n = vocab.len();

        let t0 = Instant::now();
        let words: Vec<Vec<u8>> = (0..n as u32)
            .map(|id| {
                if vocab.is_special(id) {
                    let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                    w.extend_from_slice(format!("<|special_{id}|>").as_bytes());
                    w
                } else {
                    vocab.token_bytes(id).to_vec()
                }
            })
            .collect();
        let trie = TokTrie::from(&TokRxInfo::new(n as u32, eos), &words);
        let env: TokEnv = Arc::new(VocabEnv { trie });
        let mut factory = ParserFactory::new_simple(&env).expect("llguidance factory");
        factory.quiet();
        let llg_ms = t0.elapsed().as_secs_f64() * 1e3;

        let t0 = Instant::now();
        let mut outlines_vocab = OVocabulary::new(eos);
        for id in 0..n as u32 {
            let bytes = vocab.token_bytes(id);
            if id != eos && !vocab.is_special(id) && !bytes.is_empty() {
                outlines_vocab.try_insert(bytes.to_vec(), id).expect("outlines vocabulary");
            }
        }
        let outlines_ms = t0.elapsed().as_secs_f64() * 1e3;

        let setup_ms = BTreeMap::from([("strictly", strictly_ms), ("llguidance", llg_ms), ("outlines-core", outlines_ms)]);
        Self { vocab, eos, factory, outlines_vocab, setup_ms }
    }

    pub fn strictly(&self, schema: &Value) -> Result<Arc<TokenAutomaton>, String> {
        let grammar = Grammar::compile(schema, &CompileOptions::default()).map_err(|e| e.to_string())?;
        Ok(Arc::new(TokenAutomaton::new(grammar, self.vocab.clone())))
    }

    pub fn llguidance(&self, schema: &Value) -> Result<Matcher, String> {
        let m = Matcher::new(self.factory.create_parser(TopLevelGrammar::from_json_schema(llg_schema(schema))));
        match m.get_error() {
            Some(e) => Err(e),
            None => Ok(m),
        }
    }

    pub fn outlines(&self, schema: &Value) -> Result<Index, String> {
        let regex = regex_from_value(schema, Some(""), None).map_err(|e| e.to_string())?;
        Index::new(&regex, &self.outlines_vocab).map_err(|e| e.to_string())
    }
}

/// The schema with llguidance's compact-output option.
pub fn llg_schema(schema: &Value) -> Value {
    let mut s = schema.clone();
    if let Some(o) = s.as_object_mut() {
        o.insert("x-guidance".into(), json!({"whitespace_flexible": false}));
    }
    s
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
