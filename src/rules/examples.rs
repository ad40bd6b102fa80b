//! The examples' vote: the route that the configured phrases nearest to a message agree on.
//!
//! Like a Dialogflow agent's training phrases, each `[[examples]]` phrase is a labelled
//! message. [`ExampleVote::vote`] finds the `k` phrases most similar to the message
//! (see the `retrieve` module for the similarity), adds up their squared similarities per
//! route, and returns the heaviest route. Squaring lets one close phrase outweigh a few loose
//! ones (k = 5, even half of `routing-dev.csv`: 89% exact against 88% with plain sums).
//!
//! The winner's tally over `k` is its *support*, in `[0, 1]`: 1 when all `k` voters are the
//! message itself, 0 when nothing is similar. A message whose winner has less support than
//! `min_support` looks like nothing the deployment handles, and the vote says so
//! ([`Ballot::out_of_scope`]) instead of picking a route. Support separates in-scope from
//! out-of-scope messages better than the nearest phrase's similarity alone: a message that
//! shares a word or two with one phrase by chance gets a single weak voter, while an in-scope
//! message has several phrases of its route nearby.
//!
//! Cost: indexing ~350 phrases takes well under a millisecond; a vote scores every phrase,
//! a few microseconds each.

use crate::routing::retrieve::ExampleIndex;
use crate::routing::{sanitize_message, Action, RoutingConfig};

use super::Target;

/// The configured phrases, indexed for voting. Build once per config.
#[derive(Debug, Clone)]
pub struct ExampleVote {
    index: ExampleIndex,
    /// The route of each indexed phrase, in config order.
    targets: Vec<Target>,
    k: usize,
    min_support: f32,
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
}

impl ExampleVote {
    /// Indexes the config's example phrases with the config's `[vote]` settings.
    ///
    /// ```
    /// use strictly::routing::RoutingConfig;
    /// use strictly::rules::{ExampleVote, Target};
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
            targets,
            k: cfg.vote.k,
            min_support: cfg.vote.min_support,
            max_message_chars: cfg.prompt.max_message_chars,
        }
    }

    /// The route the nearest phrases vote for; `None` when the config has no phrases.
    /// Ties between routes go to the one whose nearest phrase comes first in the config.
    pub fn vote(&self, message: &str) -> Option<Ballot> {
        self.ballot(&self.ranked(message))
    }

    /// The vote's outcome from its [`ranked`](Self::ranked) routes, for a caller that needs
    /// both (the ranking is the expensive part: it scores every phrase).
    pub fn ballot(&self, ranked: &[(Target, f32)]) -> Option<Ballot> {
        let (target, support) = ranked.first()?.clone();
        Some(Ballot { target, support, out_of_scope: support < self.min_support })
    }

    /// Every route that got a vote, heaviest first, with its tally over `k` (ties in the
    /// order of each route's nearest phrase).
    pub fn ranked(&self, message: &str) -> Vec<(Target, f32)> {
        let message = sanitize_message(message, self.max_message_chars);
        let mut tally: Vec<(&Target, f32)> = Vec::new();
        for (i, similarity) in self.index.top_k(&message, self.k) {
            let target = &self.targets[i];
            let weight = similarity.max(0.0).powi(2);
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
