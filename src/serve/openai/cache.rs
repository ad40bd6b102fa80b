//! The compiled-schema LRU, keyed by the SHA-256 of a schema's canonical JSON.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::constraint::TokenAutomaton;

/// The key of a schema: the SHA-256 of its [`canonical`] JSON.
pub(super) type Key = [u8; 32];

/// A bounded LRU of compiled schemas, with its hit and miss counts.
pub(super) struct SchemaCache {
    map: HashMap<Key, Arc<TokenAutomaton>>,
    order: VecDeque<Key>,
    capacity: usize,
    pub(super) hits: u64,
    pub(super) misses: u64,
}

impl SchemaCache {
    /// An empty cache holding at most `capacity` schemas.
    pub(super) fn new(capacity: usize) -> Self {
        SchemaCache { map: HashMap::new(), order: VecDeque::new(), capacity: capacity.max(1), hits: 0, misses: 0 }
    }

    /// The key of a schema.
    pub(super) fn key(schema: &Value) -> Key {
        Sha256::digest(canonical(schema).as_bytes()).into()
    }

    /// The cached automaton (now the most recent), counting a hit or a miss.
    pub(super) fn get(&mut self, key: &Key) -> Option<Arc<TokenAutomaton>> {
        let Some(a) = self.map.get(key).cloned() else {
            self.misses += 1;
            return None;
        };
        self.hits += 1;
        self.order.retain(|k| k != key);
        self.order.push_back(*key);
        Some(a)
    }

    /// Keeps an automaton, evicting the least recently used past the capacity.
    pub(super) fn insert(&mut self, key: Key, automaton: Arc<TokenAutomaton>) {
        while self.map.len() >= self.capacity {
            let Some(old) = self.order.pop_front() else { break };
            self.map.remove(&old);
        }
        self.map.insert(key, automaton);
        self.order.retain(|k| k != &key);
        self.order.push_back(key);
    }
}

/// JSON with every object's keys sorted, as one string.
///
/// ```
/// use serde_json::json;
/// use strictly::serve::openai::canonical;
/// assert_eq!(canonical(&json!({"b": 1, "a": {"d": 2, "c": 3}})), r#"{"a":{"c":3,"d":2},"b":1}"#);
/// ```
pub fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect::<Map<String, Value>>())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}
