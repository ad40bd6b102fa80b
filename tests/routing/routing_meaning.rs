//! The examples' vote by meaning, with the real sentence encoder and the example config:
//! paraphrases that share no words with any phrase, the policy for a topic plus a request for a
//! person, and out-of-scope messages.

use crate::common;
use strictly::routing::Router;
use strictly::routing::{Action, RoutingConfig};
use strictly::routing::{ExampleVote, Rule, Target};

fn config() -> RoutingConfig {
    RoutingConfig::load(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/routing.example.toml")).unwrap()
}

fn vote() -> ExampleVote {
    ExampleVote::with_encoder(&config(), common::encoder()).unwrap()
}

const BILLING: &str = "54515931";
const RETURNS: &str = "77120034";
const TECH: &str = "98234710";

/// A message and a phrase can mean the same with different words; the vote by words alone
/// misses these (they share no content word with the nearest phrase).
#[test]
fn paraphrases_are_matched_by_meaning() {
    let (meaning, words) = (vote(), ExampleVote::new(&config()));
    let cases = [
        ("my direct debit shows a payment I never set up", Target::Team(BILLING.into())),
        ("the parcel with my stuff hasn't shown up, any idea where it is?", Target::None),
        ("I can't get past the step where you check my passport", Target::Team(TECH.into())),
    ];
    for (message, expected) in cases.clone() {
        let b = meaning.vote(message).unwrap();
        assert_eq!(b.target, expected, "{message}");
        assert!(!b.out_of_scope, "{message}");
    }
    // The same messages by words: at least one goes astray, which is why meaning is the default.
    let by_words = cases.iter().filter(|(m, e)| words.vote(m).is_some_and(|b| &b.target == e && !b.out_of_scope)).count();
    assert!(by_words < cases.len(), "the word vote got all {by_words}");
}

/// The policy (config comments, `[[examples]]` for senior support): a message with a topic and
/// a request for a person goes to the topic's team, whose people handle it; a request for a
/// person with no topic goes to senior support.
#[test]
fn a_topic_with_a_request_for_a_person_goes_to_the_topics_team() {
    let v = vote();
    let cases = [
        ("I was charged twice and want to speak to someone", Target::Team(BILLING.into())),
        ("I want to cancel my order, please connect me to an agent", Target::Team(RETURNS.into())),
        ("can I talk to a person about my password reset", Target::Team(TECH.into())),
        ("I want to speak to someone", Target::Agent("senior@company.com".into())),
        ("is there a human I can chat with", Target::Agent("senior@company.com".into())),
    ];
    for (message, expected) in cases {
        assert_eq!(v.vote(message).unwrap().target, expected, "{message}");
    }
}

/// Through the router (no model): the seed's example ends as the billing team's payload, and an
/// out-of-scope message as default routing with the rule that says why.
#[test]
fn the_router_routes_by_meaning_and_screens_out_of_scope() {
    let mut cfg = config();
    let dir = std::env::temp_dir().join(format!("strictly-meaning-{}", std::process::id()));
    cfg.audit.path = dir.join("audit.jsonl");
    let router =
        Router::builder(cfg.clone()).backend(strictly::backend::NoModel).encoder(common::encoder()).audit(cfg.audit.path).build().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let seed = rt.block_on(router.route("I was charged twice and want to speak to someone", Some("seed"))).unwrap();
    assert_eq!((seed.decision.action, &seed.decision.target), (Action::HandoffTeam, &Target::Team(BILLING.into())));
    let payload = serde_json::to_value(&seed.payload).unwrap();
    assert_eq!(payload["metadata"]["KM_ASSIGN_TEAM"], BILLING);
    let c = seed.decision.examples_confidence.unwrap();
    assert!((0.0..=1.0).contains(&c), "{c}");
    for message in ["what's the weather like in Paris tomorrow", "who wrote the Odyssey?", "how do I get a stain out of a carpet"] {
        let r = rt.block_on(router.route(message, None)).unwrap();
        assert_eq!(r.decision.target, Target::DefaultRouting, "{message}");
        assert!(r.decision.rules.iter().any(|x| matches!(x, Rule::OutOfScope | Rule::ExamplesVote)), "{message}: {:?}", r.decision.rules);
        assert_eq!(serde_json::to_value(&r.payload).unwrap()["metadata"]["KM_ASSIGN_TO"], "");
    }
    let lines = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap().lines().count();
    assert_eq!(lines, 4, "one audit line per decision");
    let _ = std::fs::remove_dir_all(dir);
}
