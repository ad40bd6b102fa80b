//! [`AutomatonCache`]: compiled schemas kept for reuse, bounded by the memory they hold.
//!
//! A schema is keyed by the SHA-256 of its JSON text as given (objects in their own key
//! order), the compile options and the vocabulary. Key order matters: an automaton writes an
//! object's properties in the schema's order, so two schemas that differ only there are two
//! entries, each writing its own order.
//!
//! An automaton grows as it is used (the lazy DFA's states, a mask per state: about 6 KB each
//! with a 49,152-token vocabulary), so the cache measures the entries' memory
//! ([`TokenAutomaton::memory_usage`]) when it adds one, and drops the least recently used
//! until the total is under its cap. The entry just added always stays; an automaton in use
//! by a generation lives on until that generation ends, then its memory is freed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::TokenAutomaton;
use crate::automaton::Grammar;
use crate::schema::{CompileOptions, SchemaError};
use crate::vocab::Vocabulary;

/// A cache key: the SHA-256 of the schema's text, the options and the vocabulary.
type Key = [u8; 32];

struct Entry {
    automaton: Arc<TokenAutomaton>,
    /// The tick of the last lookup (least recently used goes first).
    used: u64,
    /// The memory measured last.
    bytes: usize,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    tick: u64,
    hits: u64,
    misses: u64,
}

/// What the cache holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that compiled.
    pub misses: u64,
    /// Automata held.
    pub entries: usize,
    /// Their memory, as last measured, in bytes.
    pub bytes: usize,
}

/// Compiled schemas shared by every caller, least recently used dropped past a memory cap.
pub struct AutomatonCache {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

/// The default cap: 64 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

impl Default for AutomatonCache {
    fn default() -> Self {
        Self::new(DEFAULT_CACHE_BYTES)
    }
}

impl AutomatonCache {
    /// An empty cache holding at most about `max_bytes` of automata (the newest entry is
    /// kept even when it alone is larger).
    pub fn new(max_bytes: usize) -> Self {
        AutomatonCache { inner: Mutex::new(Inner::default()), max_bytes }
    }

    fn key(schema: &Value, options: &CompileOptions, vocab: &Arc<Vocabulary>) -> Key {
        let mut h = Sha256::new();
        h.update(schema.to_string().as_bytes());
        h.update([0]);
        h.update(format!("{options:?}").as_bytes());
        h.update([0]);
        // The vocabulary by identity: an entry holds its `Arc`, so the address is not reused
        // while the entry lives.
        h.update((Arc::as_ptr(vocab) as usize).to_le_bytes());
        h.finalize().into()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The automaton of `schema` over `vocab`, from the cache or compiled (outside the lock),
    /// and whether it came from the cache.
    ///
    /// # Errors
    /// The schema's compile error (errors are not cached).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use strictly::constraint::AutomatonCache;
    /// use strictly::schema::CompileOptions;
    /// use strictly::vocab::Vocabulary;
    /// let vocab = Arc::new(Vocabulary::from_token_bytes(vec![Some(b"1".to_vec()), None], Some(1)));
    /// let cache = AutomatonCache::default();
    /// let schema = serde_json::json!({"type": "integer"});
    /// let (a, hit) = cache.get_or_compile(&schema, &CompileOptions::default(), &vocab).unwrap();
    /// assert!(!hit);
    /// let (b, hit) = cache.get_or_compile(&schema, &CompileOptions::default(), &vocab).unwrap();
    /// assert!(hit && Arc::ptr_eq(&a, &b));
    /// ```
    pub fn get_or_compile(
        &self,
        schema: &Value,
        options: &CompileOptions,
        vocab: &Arc<Vocabulary>,
    ) -> Result<(Arc<TokenAutomaton>, bool), SchemaError> {
        let key = Self::key(schema, options, vocab);
        {
            let mut inner = self.lock();
            inner.tick += 1;
            let tick = inner.tick;
            if let Some(e) = inner.entries.get_mut(&key) {
                e.used = tick;
                let a = e.automaton.clone();
                inner.hits += 1;
                return Ok((a, true));
            }
            inner.misses += 1;
        }
        let grammar = Grammar::compile(schema, options)?;
        let automaton = Arc::new(TokenAutomaton::new(grammar, vocab.clone()));
        self.insert(key, automaton.clone());
        Ok((automaton, false))
    }

    fn insert(&self, key: Key, automaton: Arc<TokenAutomaton>) {
        let bytes = automaton.memory_usage();
        let mut inner = self.lock();
        inner.tick += 1;
        let used = inner.tick;
        inner.entries.insert(key, Entry { automaton, used, bytes });
        // Measure again: the others have grown since they were added.
        for e in inner.entries.values_mut() {
            if let Some(b) = e.automaton.try_memory_usage() {
                e.bytes = b;
            }
        }
        let mut total: usize = inner.entries.values().map(|e| e.bytes).sum();
        while total > self.max_bytes && inner.entries.len() > 1 {
            let Some((&old, _)) = inner.entries.iter().filter(|(k, _)| **k != key).min_by_key(|(_, e)| e.used) else { break };
            if let Some(e) = inner.entries.remove(&old) {
                total -= e.bytes;
            }
        }
    }

    /// Hits, misses, entries and their memory.
    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats {
            hits: inner.hits,
            misses: inner.misses,
            entries: inner.entries.len(),
            bytes: inner.entries.values().map(|e| e.bytes).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Arc<Vocabulary> {
        let tokens: Vec<Option<Vec<u8>>> =
            [&b"{"[..], b"}", b"\"a\"", b"\"b\"", b":", b",", b"1", b"2"].iter().map(|t| Some(t.to_vec())).chain([None]).collect();
        Arc::new(Vocabulary::from_token_bytes(tokens, Some(8)))
    }

    #[test]
    fn property_order_is_part_of_the_key() {
        let vocab = vocab();
        let cache = AutomatonCache::default();
        let ab: Value = serde_json::from_str(
            r#"{"type":"object","properties":{"a":{"const":1},"b":{"const":2}},"required":["a","b"],"additionalProperties":false}"#,
        )
        .unwrap();
        let ba: Value = serde_json::from_str(
            r#"{"type":"object","properties":{"b":{"const":2},"a":{"const":1}},"required":["a","b"],"additionalProperties":false}"#,
        )
        .unwrap();
        let (first, _) = cache.get_or_compile(&ab, &CompileOptions::default(), &vocab).unwrap();
        let (second, hit) = cache.get_or_compile(&ba, &CompileOptions::default(), &vocab).unwrap();
        assert!(!hit, "a schema differing in property order shared an automaton");
        assert!(first.grammar().matches(br#"{"a":1,"b":2}"#) && !first.grammar().matches(br#"{"b":2,"a":1}"#));
        assert!(second.grammar().matches(br#"{"b":2,"a":1}"#) && !second.grammar().matches(br#"{"a":1,"b":2}"#));
        assert_eq!(cache.stats().entries, 2);
    }

    #[test]
    fn the_memory_cap_drops_the_least_recently_used() {
        let vocab = vocab();
        // Schemas of one size.
        let one = |n: usize| serde_json::json!({"enum": [n]});
        let probe = AutomatonCache::default();
        probe.get_or_compile(&one(10), &CompileOptions::default(), &vocab).unwrap();
        let each = probe.stats().bytes;
        // Room for two and a half.
        let cap = each * 5 / 2;
        let cache = AutomatonCache::new(cap);
        for n in 10..=15 {
            cache.get_or_compile(&one(n), &CompileOptions::default(), &vocab).unwrap();
            // 10 stays the most recently used.
            assert!(cache.get_or_compile(&one(10), &CompileOptions::default(), &vocab).unwrap().1, "{n}: {:?}", cache.stats());
            let stats = cache.stats();
            assert!(stats.bytes <= cap, "{stats:?} over {cap}");
        }
        assert_eq!(cache.stats().entries, 2);
        // The least recently used of the others went first: 15 (added last) is there, 14 not.
        assert!(cache.get_or_compile(&one(15), &CompileOptions::default(), &vocab).unwrap().1);
        assert!(!cache.get_or_compile(&one(14), &CompileOptions::default(), &vocab).unwrap().1);
    }
}
