//! Prompt building: a byte-identical static prefix, relevant few-shot examples, clean input.

use serde_json::Value;
use strictly::routing::{deployment_schema, sanitize_message, ChatMessage, PromptBuilder, Role, RoutingConfig};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/routing.example.toml");

fn config() -> RoutingConfig {
    RoutingConfig::load(EXAMPLE).unwrap()
}

/// The example answers, most similar last, parsed.
fn answers(messages: &[ChatMessage]) -> Vec<Value> {
    messages.iter().filter(|m| m.role == Role::Assistant).map(|m| serde_json::from_str(&m.content).unwrap()).collect()
}

#[test]
fn static_prefix_is_byte_identical_across_messages() {
    let cfg = config();
    let a = PromptBuilder::new(&cfg).build("I want my money back for the broken chair");
    let b = PromptBuilder::new(&cfg).build("how do I reset my password?");
    assert_eq!(a[0].role, Role::System);
    assert_eq!(a[0].content.as_bytes(), b[0].content.as_bytes());
    assert_ne!(a[1..], b[1..]);
}

#[test]
fn system_prompt_describes_the_deployment() {
    let cfg = config();
    let builder = PromptBuilder::new(&cfg);
    let system = builder.system_prompt();
    for needle in [
        "an e-commerce company",
        "- billing (id 54515931): invoices, payments, charges, cancellation fees",
        "- returns (id 77120034)",
        "- technical support (id 98234710)",
        "- senior@company.com: senior support",
        "- billing@company.com: billing specialist",
        "handoff_agent",
        "default_fallback",
        "refusal",
    ] {
        assert!(system.contains(needle), "missing {needle:?} in:\n{system}");
    }
    assert!(!system.contains("customerMessage"));
}

#[test]
fn message_is_last_and_examples_alternate() {
    let cfg = config();
    let messages = PromptBuilder::new(&cfg).build("where is my parcel?");
    assert_eq!(messages.len(), 1 + 2 * cfg.prompt.few_shot + 1);
    for pair in messages[1..messages.len() - 1].chunks(2) {
        assert_eq!((pair[0].role, pair[1].role), (Role::User, Role::Assistant));
    }
    assert_eq!(messages.last().unwrap(), &ChatMessage { role: Role::User, content: "where is my parcel?".into() });
}

#[test]
fn retrieved_examples_are_relevant() {
    // Five neighbours, whatever the example config shows the model, so that "at least two
    // relevant" means something about the retrieval.
    let mut cfg = config();
    cfg.prompt.few_shot = 5;
    let builder = PromptBuilder::new(&cfg);
    let cases = [
        ("still waiting on the refund for my broken blender", "assignTeam", "77120034"),
        ("how can I get a refund?", "assignTeam", "77120034"),
        ("please cancel my order, I don't need it anymore", "assignTeam", "77120034"),
        ("my password reset link does not work", "assignTeam", "98234710"),
        ("there's a charge on my card I don't recognise, my payment was taken twice", "assignTeam", "54515931"),
        ("I need the invoice for order 12345", "assignTeam", "54515931"),
        ("I want to speak to a human, not a bot", "assignTo", "senior@company.com"),
        ("what's the capital of Peru", "action", "default_fallback"),
        ("how long does delivery take", "action", "answer"),
        ("I'd like to change my shipping address", "action", "answer"),
    ];
    for (message, key, expected) in cases {
        let answers = answers(&builder.build(message));
        let closest = answers.last().unwrap();
        assert_eq!(closest[key], expected, "closest example for {message:?}: {closest}");
        let matching = answers.iter().filter(|a| a[key] == expected).count();
        assert!(matching >= 2, "only {matching} relevant examples for {message:?}: {answers:?}");
    }
}

#[test]
fn example_answers_satisfy_the_deployment_schema() {
    let cfg = config();
    let validator = jsonschema::draft202012::new(&deployment_schema(&cfg)).unwrap();
    let mut cfg_all = cfg.clone();
    cfg_all.prompt.few_shot = usize::MAX;
    let messages = PromptBuilder::new(&cfg_all).build("anything");
    let answers = answers(&messages);
    assert_eq!(answers.len(), cfg.examples.iter().map(|e| e.phrases.len()).sum::<usize>());
    for answer in answers {
        assert!(validator.is_valid(&answer), "{answer}");
        assert_eq!(answer["confidence"], 0.9);
    }
}

#[test]
fn few_shot_count_is_configurable() {
    let mut cfg = config();
    cfg.prompt.few_shot = 2;
    assert_eq!(PromptBuilder::new(&cfg).build("hello").len(), 1 + 4 + 1);
    cfg.prompt.few_shot = 0;
    assert_eq!(PromptBuilder::new(&cfg).build("hello").len(), 2);
}

#[test]
fn ties_go_to_the_example_listed_first() {
    let mut cfg = config();
    cfg.prompt.few_shot = 1;
    let mut first = cfg.examples[0].clone();
    first.phrases = vec!["zebra crossing".into()];
    let mut second = cfg.examples[3].clone();
    second.phrases = vec!["zebra crossing".into()];
    cfg.examples = vec![first.clone(), second.clone()];
    let pick = |cfg: &RoutingConfig| answers(&PromptBuilder::new(cfg).build("Zebra crossing!"))[0]["assignTeam"].clone();
    assert_eq!(pick(&cfg), first.target.as_deref().unwrap());
    cfg.examples = vec![second.clone(), first];
    assert_eq!(pick(&cfg), second.target.as_deref().unwrap());
}

#[test]
fn user_message_is_cleaned_and_truncated() {
    let mut cfg = config();
    cfg.prompt.max_message_chars = 10;
    let messages = PromptBuilder::new(&cfg).build("\u{0}  Grüße\u{7}\u{1b}[0m aus\tKöln\r\n und mehr");
    assert_eq!(messages.last().unwrap().content, "Grüße[0m a");

    assert_eq!(sanitize_message("a\u{0}b\u{85}c\u{7f}d\n\te", 100), "abcd\n\te");
    assert_eq!(sanitize_message("日本語のテキスト", 3), "日本語");
    assert_eq!(sanitize_message("👍🏽 ok", 1), "👍");
    let long = "é".repeat(5000);
    assert_eq!(sanitize_message(&long, 2000).chars().count(), 2000);
    // Control-token text passes through: escaping it is the template layer's job.
    assert_eq!(sanitize_message("<|im_end|>", 100), "<|im_end|>");
}
