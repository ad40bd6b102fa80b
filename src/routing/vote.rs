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

use super::retrieve::{best_k, ExampleIndex};
#[cfg(feature = "local")]
use super::semantic::SemanticIndex;
use super::classification::{Action, Target};
use super::config::RoutingConfig;
use super::prompt::sanitize_message;


/// The configured phrases, indexed for voting. Build once per config.
#[derive(Debug, Clone)]
pub struct ExampleVote {
    /// Words and character trigrams: always built (cheap), and the fallback when the encoder
    /// fails on a message.
    index: ExampleIndex,
    /// Meaning: sentence embeddings, when the vote was built with an encoder.
    #[cfg(feature = "local")]
    semantic: Option<SemanticIndex>,
    /// The route of each indexed phrase, in config order.
    targets: Vec<Target>,
    k: usize,
    power: i32,
    min_support: f32,
    min_similarity: f32,
    /// The word similarity's share when the vote has an encoder.
    #[cfg_attr(not(feature = "local"), allow(dead_code))]
    lexical_weight: f32,
    max_message_chars: usize,
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
                let target = match (route.action, route.target.as_deref()) {
                    (Action::HandoffTeam, Some(id)) => Target::Team(id.to_owned()),
                    (Action::HandoffAgent, Some(email)) => Target::Agent(email.to_owned()),
                    (Action::Answer, _) => Target::None,
                    // Validation rules out handoffs without a target.
                    _ => Target::DefaultRouting,
                };
                route.phrases.iter().map(move |p| (p.as_str(), target.clone()))
            })
            .unzip();
        ExampleVote {
            index: ExampleIndex::new(phrases),
            #[cfg(feature = "local")]
            semantic: None,
            targets,
            k: cfg.vote.k,
            power: cfg.vote.power,
            min_support: cfg.vote.min_support,
            min_similarity: cfg.vote.min_similarity,
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

    /// The `n` nearest phrases as `(position in config order, similarity)`, best first; ties
    /// go to the phrase listed first. With an encoder, a phrase's similarity is the cosine of
    /// the two embeddings, mixed with the word similarity by `[vote] lexical_weight` (and the
    /// word similarity alone if the encoder fails on this message); without one, the word
    /// similarity.
    pub fn nearest(&self, message: &str, n: usize) -> Vec<(usize, f32)> {
        let message = sanitize_message(message, self.max_message_chars);
        let words = self.index.similarities(&message);
        #[cfg(feature = "local")]
        if let Some(semantic) = &self.semantic {
            match semantic.similarities(&message) {
                Ok(meaning) => {
                    let w = self.lexical_weight;
                    let mixed = meaning.iter().zip(&words).map(|(m, l)| (1.0 - w) * m + w * l).collect();
                    return best_k(mixed, n);
                }
                Err(e) => tracing::warn!("the sentence encoder failed, voting by words: {e}"),
            }
        }
        best_k(words, n)
    }

    /// The route the nearest phrases vote for; `None` when the config has no phrases.
    /// Ties between routes go to the one whose nearest phrase comes first in the config.
    pub fn vote(&self, message: &str) -> Option<Ballot> {
        self.poll(message).1
    }

    /// The vote's outcome from its [`ranked`](Self::ranked) routes, for a caller that needs
    /// both (the ranking is the expensive part: it scores every phrase).
    pub fn ballot(&self, ranked: &[(Target, f32)]) -> Option<Ballot> {
        let (target, support) = ranked.first()?.clone();
        let total: f32 = ranked.iter().map(|(_, w)| w).sum();
        let confidence = if total > 0.0 { support / total } else { 0.0 };
        Some(Ballot { target, support, out_of_scope: support < self.min_support, confidence })
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
    pub fn poll_with(&self, message: &str, n: usize) -> (Vec<(usize, f32)>, Vec<(Target, f32)>, Option<Ballot>) {
        let nearest = self.nearest(message, n.max(self.k));
        let ranked = self.tally(&nearest[..self.k.min(nearest.len())]);
        let mut ballot = self.ballot(&ranked);
        if let (Some(b), Some((_, top))) = (&mut ballot, nearest.first()) {
            b.out_of_scope |= *top < self.min_similarity;
        }
        (nearest, ranked, ballot)
    }

    /// Every route that got a vote, heaviest first, with its tally over `k` (ties in the
    /// order of each route's nearest phrase).
    pub fn ranked(&self, message: &str) -> Vec<(Target, f32)> {
        self.tally(&self.nearest(message, self.k))
    }

    /// Each route's tally over `k` from the nearest phrases, heaviest first.
    fn tally(&self, nearest: &[(usize, f32)]) -> Vec<(Target, f32)> {
        let mut tally: Vec<(&Target, f32)> = Vec::new();
        for &(i, similarity) in nearest {
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
