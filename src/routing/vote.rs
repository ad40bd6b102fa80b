//! The examples' vote: the route that the configured phrases nearest to a message agree on.
//!
//! Like a Dialogflow agent's training phrases, each `[[examples]]` phrase is a labelled
//! message. [`ExampleVote::poll`] finds the `k` phrases most similar to the message, adds up
//! their similarities raised to `[vote] power` per route, and returns the heaviest route. A
//! high power lets one close phrase outweigh a few loose ones.
//!
//! Similarity is by meaning when the vote is built [`with_encoder`](ExampleVote::with_encoder):
//! the cosine of sentence embeddings, mixed with the word-and-trigram similarity of the
//! `retrieve` module by `[vote] lexical_weight`. Without an encoder (or if it fails on a
//! message) the word similarity alone decides.
//!
//! The ballot says how sure the vote is: its *confidence* is the winner's share of all the
//! voters' weight (1 when every one of the `k` nearest phrases belongs to the winner), and its
//! *support* is the winner's tally over `k`. A message whose nearest phrase is less similar
//! than `[vote] min_similarity` (or whose winner's support is below `min_support`) looks like
//! nothing the deployment handles: [`Ballot::out_of_scope`]. The config's out-of-scope phrases
//! (`default_fallback` examples) catch what is near something the shop does not do.
//!
//! Cost: the word index takes well under a millisecond to build; with an encoder, the phrases
//! are embedded once (about a second for 500 on 2 cores) and a vote costs one encoder pass
//! over the message plus a dot product per phrase.

use std::sync::Arc;

use super::audit::{NearPhrase, NEAREST_RECORDED};
use super::classification::Target;
use super::config::{RoutingConfig, VoteSettings};
use super::prompt::sanitize_message;
use super::retrieve::{best_k, ExampleIndex};
#[cfg(feature = "local")]
use super::semantic::SemanticIndex;

/// The configured phrases, indexed for voting. Build once per config.
#[derive(Debug, Clone)]
pub struct ExampleVote {
    /// Words and character trigrams: always built (cheap), and the fallback when the encoder
    /// fails on a message.
    index: ExampleIndex,
    /// Meaning: sentence embeddings, when the vote was built with an encoder.
    #[cfg(feature = "local")]
    semantic: Option<SemanticIndex>,
    /// The phrases, in config order (what a decision's record shows of its nearest ones).
    phrases: Arc<[String]>,
    /// The counting half: from the nearest phrases to the ballot.
    tally: Tally,
    /// The word similarity's share when the vote has an encoder.
    #[cfg_attr(not(feature = "local"), allow(dead_code))]
    lexical_weight: f32,
    max_message_chars: usize,
}

/// A message's similarity to every phrase, before the `[vote]` numbers are applied: what the
/// vote computes once per message (the expensive part), and what `strictly tune` replays
/// under many settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Similarities {
    /// The word-and-trigram similarity to each phrase, in config order.
    pub words: Vec<f32>,
    /// The cosine of the sentence embeddings with each phrase, in config order, when the vote
    /// has an encoder and it embedded the message.
    pub meaning: Option<Vec<f32>>,
}

impl Similarities {
    /// The `n` nearest phrases as `(position in config order, similarity)`, best first; ties
    /// go to the phrase listed first. With meaning, a phrase's similarity is
    /// `(1 - lexical_weight) * cosine + lexical_weight * words`; without, the words alone.
    pub fn nearest(&self, lexical_weight: f32, n: usize) -> Vec<(usize, f32)> {
        match &self.meaning {
            Some(meaning) => {
                let w = lexical_weight;
                best_k(meaning.iter().zip(&self.words).map(|(m, l)| (1.0 - w) * m + w * l).collect(), n)
            }
            None => best_k(self.words.clone(), n),
        }
    }
}

/// The counting half of the vote: the nearest phrases in, the ranked routes and the
/// [`Ballot`] out. It holds the phrases' routes and the `[vote]` numbers `k`, `power`,
/// `min_support` and `min_similarity`; [`with_settings`](Self::with_settings) gives the same
/// routes under other numbers, cheaply (the routes are shared).
#[derive(Debug, Clone)]
pub struct Tally {
    /// The route of each indexed phrase, in config order.
    targets: Arc<[Target]>,
    k: usize,
    power: i32,
    min_support: f32,
    min_similarity: f32,
}

impl Tally {
    /// The same phrases' routes, counted with `vote`'s `k`, `power`, `min_support` and
    /// `min_similarity` (its `lexical_weight` belongs to [`Similarities::nearest`]).
    pub fn with_settings(&self, vote: &VoteSettings) -> Tally {
        Tally {
            targets: Arc::clone(&self.targets),
            k: vote.k,
            power: vote.power,
            min_support: vote.min_support,
            min_similarity: vote.min_similarity,
        }
    }

    /// How many of the nearest phrases vote.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The route of the phrase at `position` (config order).
    pub fn target(&self, position: usize) -> Option<&Target> {
        self.targets.get(position)
    }

    /// The vote over `nearest` (best first, as [`Similarities::nearest`] gives them; the first
    /// `k` vote): every route that got a vote, heaviest first, and the ballot, which is out of
    /// scope when the nearest phrase is less similar than `min_similarity` or the winner's
    /// support is below `min_support`. `None` when there is no phrase.
    pub fn count(&self, nearest: &[(usize, f32)]) -> (Vec<(Target, f32)>, Option<Ballot>) {
        let ranked = self.ranked(&nearest[..self.k.min(nearest.len())]);
        let mut ballot = self.ballot(&ranked);
        if let (Some(b), Some((_, top))) = (&mut ballot, nearest.first()) {
            b.out_of_scope |= *top < self.min_similarity;
        }
        (ranked, ballot)
    }

    /// The vote's outcome from its ranked routes.
    fn ballot(&self, ranked: &[(Target, f32)]) -> Option<Ballot> {
        let (target, support) = ranked.first()?.clone();
        let total: f32 = ranked.iter().map(|(_, w)| w).sum();
        let confidence = if total > 0.0 { support / total } else { 0.0 };
        Some(Ballot { target, support, out_of_scope: support < self.min_support, confidence })
    }

    /// Each route's tally over `k` from the voters, heaviest first.
    fn ranked(&self, voters: &[(usize, f32)]) -> Vec<(Target, f32)> {
        let mut tally: Vec<(&Target, f32)> = Vec::new();
        for &(i, similarity) in voters {
            let target = &self.targets[i];
            let weight = similarity.max(0.0).powi(self.power);
            match tally.iter_mut().find(|(t, _)| *t == target) {
                Some(entry) => entry.1 += weight,
                None => tally.push((target, weight)),
            }
        }
        // A stable sort keeps equal tallies in nearest-phrase order.
        tally.sort_by(|a, b| b.1.total_cmp(&a.1));
        tally.into_iter().map(|(t, w)| (t.clone(), w / self.k as f32)).collect()
    }
}

/// The outcome of one vote.
#[derive(Debug, Clone, PartialEq)]
pub struct Ballot {
    /// The route with the largest summed squared similarity among the `k` nearest phrases.
    pub target: Target,
    /// The winner's summed squared similarity over `k`, in `[0, 1]`.
    pub support: f32,
    /// The support is below the config's `min_support`.
    pub out_of_scope: bool,
    /// The winner's share of all the nearest phrases' weight, in `[0, 1]`: 1 when every
    /// voter agrees.
    pub confidence: f32,
}

impl ExampleVote {
    /// Indexes the config's example phrases with the config's `[vote]` settings.
    ///
    /// ```
    /// use strictly::routing::RoutingConfig;
    /// use strictly::routing::{ExampleVote, Target};
    ///
    /// let cfg = RoutingConfig::load("config/routing.example.toml")?;
    /// let ballot = ExampleVote::new(&cfg).vote("my card was charged two times").unwrap();
    /// assert_eq!(ballot.target, Target::Team("54515931".into()));
    /// assert!(!ballot.out_of_scope);
    /// # Ok::<(), strictly::routing::ConfigError>(())
    /// ```
    pub fn new(cfg: &RoutingConfig) -> Self {
        let (phrases, targets): (Vec<&str>, Vec<Target>) = cfg
            .examples
            .iter()
            .flat_map(|route| {
                let target = Target::from_parts(route.action, route.target.as_deref());
                route.phrases.iter().map(move |p| (p.as_str(), target.clone()))
            })
            .unzip();
        let tally = Tally { targets: targets.into(), k: 0, power: 1, min_support: 0.0, min_similarity: 0.0 };
        ExampleVote {
            phrases: phrases.iter().map(|p| p.to_string()).collect(),
            index: ExampleIndex::new(phrases),
            #[cfg(feature = "local")]
            semantic: None,
            tally: tally.with_settings(&cfg.vote),
            lexical_weight: cfg.vote.lexical_weight,
            max_message_chars: cfg.prompt.max_message_chars,
        }
    }

    /// The vote over the phrases' meanings: the nearest phrases are those whose sentence
    /// embeddings are most similar to the message's. The phrases are embedded here, once.
    #[cfg(feature = "local")]
    pub fn with_encoder(
        cfg: &RoutingConfig,
        encoder: std::sync::Arc<crate::encoder::SentenceEncoder>,
    ) -> Result<Self, crate::encoder::EncoderError> {
        let mut vote = Self::new(cfg);
        let phrases: Vec<&str> = cfg.examples.iter().flat_map(|r| r.phrases.iter().map(String::as_str)).collect();
        vote.semantic = Some(SemanticIndex::new(encoder, &phrases)?);
        Ok(vote)
    }

    /// [`with_encoder`](Self::with_encoder), taking the embeddings of phrases `cache` holds
    /// from it; also returns how many phrases were embedded now.
    #[cfg(feature = "local")]
    pub(crate) fn with_encoder_cached(
        cfg: &RoutingConfig,
        encoder: std::sync::Arc<crate::encoder::SentenceEncoder>,
        cache: &super::semantic::EmbeddingCache,
    ) -> Result<(Self, usize), crate::encoder::EncoderError> {
        let mut vote = Self::new(cfg);
        let phrases: Vec<&str> = cfg.examples.iter().flat_map(|r| r.phrases.iter().map(String::as_str)).collect();
        let (index, embedded) = SemanticIndex::cached(encoder, &phrases, cache)?;
        vote.semantic = Some(index);
        Ok((vote, embedded))
    }

    /// The `n` nearest phrases as `(position in config order, similarity)`, best first; ties
    /// go to the phrase listed first. With an encoder, a phrase's similarity is the cosine of
    /// the two embeddings, mixed with the word similarity by `[vote] lexical_weight` (and the
    /// word similarity alone if the encoder fails on this message); without one, the word
    /// similarity.
    pub fn nearest(&self, message: &str, n: usize) -> Vec<(usize, f32)> {
        self.similarities(message).nearest(self.lexical_weight, n)
    }

    /// The message's similarity to every phrase, by words and (with an encoder) by meaning:
    /// the part of the vote that does not depend on the `[vote]` numbers. The message is
    /// sanitized and cut as the prompt's is. If the encoder fails on the message, the
    /// similarity is by words alone.
    pub fn similarities(&self, message: &str) -> Similarities {
        let message = sanitize_message(message, self.max_message_chars);
        let words = self.index.similarities(&message);
        #[cfg(feature = "local")]
        if let Some(semantic) = &self.semantic {
            match semantic.similarities(&message) {
                Ok(meaning) => return Similarities { words, meaning: Some(meaning) },
                Err(e) => tracing::warn!("the sentence encoder failed, voting by words: {e}"),
            }
        }
        Similarities { words, meaning: None }
    }

    /// [`similarities`](Self::similarities) for many messages, with the encoder run over
    /// batches of them (sorted by length, so padding stays small) rather than one at a time.
    /// `progress` is told how many messages are done after each batch. Unlike the one-message
    /// form, an encoder failure is an error: a caller replaying many settings over the result
    /// would otherwise compare words with meaning.
    #[cfg(feature = "local")]
    pub fn similarities_of_many<S: AsRef<str>>(
        &self,
        messages: &[S],
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<Similarities>, crate::encoder::EncoderError> {
        let texts: Vec<String> = messages.iter().map(|m| sanitize_message(m.as_ref(), self.max_message_chars)).collect();
        let mut out: Vec<Similarities> = texts.iter().map(|t| Similarities { words: self.index.similarities(t), meaning: None }).collect();
        let Some(semantic) = &self.semantic else {
            progress(texts.len());
            return Ok(out);
        };
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut done = 0;
        for chunk in order.chunks(256) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i].as_str()).collect();
            for (&i, embedding) in chunk.iter().zip(semantic.encoder().embed(&batch)?) {
                out[i].meaning = Some(semantic.cosines(&embedding));
            }
            done += chunk.len();
            progress(done);
        }
        Ok(out)
    }

    /// The phrase at a position in config order (as [`nearest`](Self::nearest) gives them)
    /// and its route.
    pub fn phrase(&self, i: usize) -> Option<(&str, &Target)> {
        Some((self.phrases.get(i)?.as_str(), self.tally.targets.get(i)?))
    }

    /// The first [`NEAREST_RECORDED`] of `nearest` (as [`nearest`](Self::nearest) gives
    /// them) as a decision's record keeps them.
    pub fn recorded(&self, nearest: &[(usize, f32)]) -> Vec<NearPhrase> {
        let near = |&(i, similarity): &(usize, f32)| {
            self.phrase(i).map(|(p, t)| NearPhrase { phrase: p.to_owned(), target: t.clone(), similarity })
        };
        nearest.iter().take(NEAREST_RECORDED).filter_map(near).collect()
    }

    /// The counting half of this vote, with the config's numbers.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// The route the nearest phrases vote for; `None` when the config has no phrases.
    /// Ties between routes go to the one whose nearest phrase comes first in the config.
    pub fn vote(&self, message: &str) -> Option<Ballot> {
        self.poll(message).1
    }

    /// The vote's outcome from its [`ranked`](Self::ranked) routes, for a caller that needs
    /// both (the ranking is the expensive part: it scores every phrase).
    pub fn ballot(&self, ranked: &[(Target, f32)]) -> Option<Ballot> {
        self.tally.ballot(ranked)
    }

    /// The whole vote on one message: the ranked routes and the ballot, from one pass over the
    /// phrases. The ballot is out of scope when the nearest phrase is less similar than
    /// `[vote] min_similarity`, or the winner's support is below `min_support`.
    pub fn poll(&self, message: &str) -> (Vec<(Target, f32)>, Option<Ballot>) {
        let (_, ranked, ballot) = self.poll_with(message, 0);
        (ranked, ballot)
    }

    /// [`poll`](Self::poll), also returning the nearest phrases (at least `n` of them, and the
    /// `k` voters), so a caller that needs both (few-shot examples) embeds the message once.
    pub fn poll_with(&self, message: &str, n: usize) -> Poll {
        let nearest = self.nearest(message, n.max(self.tally.k));
        let (ranked, ballot) = self.tally.count(&nearest);
        (nearest, ranked, ballot)
    }

    /// Every route that got a vote, heaviest first, with its tally over `k` (ties in the
    /// order of each route's nearest phrase).
    pub fn ranked(&self, message: &str) -> Vec<(Target, f32)> {
        self.tally.ranked(&self.nearest(message, self.tally.k))
    }
}

/// [`ExampleVote::poll_with`]'s answer: the nearest phrases (index, similarity), the routes
/// ranked by their share of the vote, and the ballot when the vote is decisive.
pub type Poll = (Vec<(usize, f32)>, Vec<(Target, f32)>, Option<Ballot>);
