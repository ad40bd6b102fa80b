//! Nearest example phrases by TF-IDF cosine similarity.
//!
//! Features are lowercase words (digit runs collapse to `#`, so order numbers don't matter)
//! and character trigrams of each word padded with spaces (so typos and inflections still
//! overlap: "refund" and "refunded" share " re", "ref", "efu", "fun", "und"). Weights are
//! `(1 + ln tf) * idf` with smoothed idf. The score is a weighted mean of the word cosine
//! ([`WORD_SHARE`]) and the trigram cosine (the rest). A query's features that no example has
//! still count in its length, with the idf of a feature seen nowhere (times
//! [`UNSEEN_WEIGHT`]): a message made mostly of words the examples never use is far from all of
//! them, instead of being judged by the few words it shares. Feature ids are assigned
//! in a fixed order and dot products are summed in id order, so scores — and ties — are the
//! same on every run; ties go to the example listed first.
//!
//! The constants were chosen on the even rows of `routing-dev.csv` with the examples-only
//! evaluation (`strictly eval --backend examples --half even`); the odd rows check them.
//!
//! Cost: for a few hundred phrases, indexing takes well under a millisecond and a query is a
//! merge over a few dozen features per phrase.

use std::collections::{BTreeMap, HashMap};

/// Share of the word cosine in the score; the trigram cosine has the rest. Trigrams carry
/// typos and inflections, so they get the larger share (0.5 scored 2 points lower).
pub(crate) const WORD_SHARE: f32 = 0.3;

/// How much a query feature that no example has weighs, relative to a feature seen once.
/// 1 treats it like any rare feature; 2 pushes messages in other words further away
/// (out-of-scope detection), without hurting in-scope routing.
pub(crate) const UNSEEN_WEIGHT: f32 = 2.0;

/// Sorted `(feature id, weight)` pairs.
type SparseVec = Vec<(u32, f32)>;

/// An immutable index over example texts.
#[derive(Debug, Clone)]
pub(crate) struct ExampleIndex {
    /// The idf of a feature no example has, times [`UNSEEN_WEIGHT`].
    unseen_idf: f32,
    ids: HashMap<String, u32>,
    idf: Vec<f32>,
    docs: Vec<SparseVec>,
}

impl ExampleIndex {
    pub(crate) fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let counted: Vec<BTreeMap<String, u32>> = texts.into_iter().map(features).collect();
        let mut ids = HashMap::new();
        let mut df: Vec<u32> = Vec::new();
        for doc in &counted {
            for feature in doc.keys() {
                let next = ids.len() as u32;
                let id = *ids.entry(feature.clone()).or_insert(next);
                if id == next {
                    df.push(0);
                }
                df[id as usize] += 1;
            }
        }
        let n = counted.len() as f32;
        let idf = df.iter().map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0).collect();
        let mut index = ExampleIndex { unseen_idf: ((1.0 + n).ln() + 1.0) * UNSEEN_WEIGHT, ids, idf, docs: Vec::new() };
        index.docs = counted.iter().map(|doc| index.vectorize(doc)).collect();
        index
    }

    /// The `k` most similar texts as `(position, cosine)`, best first; ties by position.
    pub(crate) fn top_k(&self, query: &str, k: usize) -> Vec<(usize, f32)> {
        best_k(self.similarities(query), k)
    }

    /// Every text's cosine with the query, in position order.
    pub(crate) fn similarities(&self, query: &str) -> Vec<f32> {
        let q = self.vectorize(&features(query));
        self.docs.iter().map(|d| dot(&q, d)).collect()
    }

    /// Weights the features and normalises the word part and the trigram part separately, to
    /// lengths `√WORD_SHARE` and `√(1 - WORD_SHARE)`: the cosine is then the weighted mean of
    /// the word and the trigram cosines, so the many trigrams of a long word don't drown the
    /// words. Unknown features can't match, so they are dropped, after counting in the length.
    fn vectorize(&self, counts: &BTreeMap<String, u32>) -> SparseVec {
        let mut v: SparseVec = Vec::new();
        for (prefix, share) in [("w:", WORD_SHARE), ("c:", 1.0 - WORD_SHARE)] {
            let start = v.len();
            let mut unseen = 0.0;
            for (f, &tf) in counts.range(prefix.to_owned()..).take_while(|(f, _)| f.starts_with(prefix)) {
                let tf = 1.0 + (tf as f32).ln();
                match self.ids.get(f) {
                    Some(&id) => v.push((id, tf * self.idf[id as usize])),
                    None => unseen += (tf * self.unseen_idf).powi(2),
                }
            }
            let part = &mut v[start..];
            let norm = ((part.iter().map(|(_, w)| w * w).sum::<f32>() + unseen) / share).sqrt();
            if norm > 0.0 {
                part.iter_mut().for_each(|(_, w)| *w /= norm);
            }
        }
        v.sort_unstable_by_key(|&(id, _)| id);
        v
    }
}

/// The `k` highest scores as `(position, score)`, best first; ties by position.
pub(crate) fn best_k(scores: Vec<f32>, k: usize) -> Vec<(usize, f32)> {
    let mut scored: Vec<(usize, f32)> = scores.into_iter().enumerate().collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}

fn features(text: &str) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    let lower = text.to_lowercase();
    for word in lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = if word.chars().all(|c| c.is_numeric()) { "#" } else { word };
        *counts.entry(format!("w:{word}")).or_insert(0) += 1;
        let padded: Vec<char> = std::iter::once(' ').chain(word.chars()).chain(std::iter::once(' ')).collect();
        for tri in padded.windows(3) {
            *counts.entry(format!("c:{}", tri.iter().collect::<String>())).or_insert(0) += 1;
        }
    }
    counts
}

fn dot(a: &SparseVec, b: &SparseVec) -> f32 {
    let (mut i, mut j, mut sum) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                sum += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_text_wins_and_ties_go_to_the_first() {
        let index = ExampleIndex::new(["where is my parcel", "reset my password", "reset my password"]);
        let top = index.top_k("I forgot my pasword, please reset it", 3);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), [1, 2, 0]);
        assert_eq!(top[0].1, top[1].1);
        assert!(top[0].1 > top[2].1);
    }

    #[test]
    fn words_no_example_has_lower_the_similarity() {
        let index = ExampleIndex::new(["where is my parcel", "reset my password"]);
        let plain = index.top_k("where is my parcel", 1)[0];
        let padded = index.top_k("where is my parcel of quinoa flakes", 1)[0];
        assert_eq!((plain.0, padded.0), (0, 0));
        assert!(plain.1 > 0.99 && padded.1 < 0.8 * plain.1, "{plain:?} {padded:?}");
    }

    #[test]
    fn digit_runs_are_one_feature() {
        assert_eq!(features("order 123"), features("order 98765"));
    }
}
