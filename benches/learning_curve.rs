//! The learning curve: how much corrections teach the vote. `cargo bench --bench learning_curve`.
//!
//! 1. The example config with one route's phrases (`ROUTE`, default the technical-support team
//!    `98234710`) cut to its first three, examples only (no model), the real encoder.
//! 2. That route's rows of `routing-human-dev.csv` the cut router misroutes, in file order,
//!    split in halves.
//! 3. Each message of the first half is routed and recorded, then corrected to the route through
//!    the same path as `POST /v1/feedback` (`store::feedback::correct` and `learn`, the example's
//!    `[learning]` cap and near-duplicate rule, the embedded store in a temporary directory), and
//!    the router is rebuilt over the learned phrases.
//! 4. Exact routing on the second half before and after, and on every row of the file (so a
//!    phrase that pulls other routes' messages shows), printed.
//!
//! Environment: `ROUTE` (a team id of the example config), `STRICTLY_MODELS_DIR`.

use std::path::Path;
use std::time::Instant;

use strictly::backend::NoModel;
use strictly::routing::audit::AuditLog;
use strictly::routing::{Router, RoutingConfig, Target};
use strictly::store::feedback::{correct, learn, Corrections, Files};

struct Row {
    text: String,
    expected: Target,
}

fn rows(path: &Path) -> Vec<Row> {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    let (text, action, team, agent) = (col("text"), col("expected_action"), col("expected_team"), col("expected_agent"));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let expected = match &r[action] {
                "handoff_team" => Target::Team(r[team].to_owned()),
                "handoff_agent" => Target::Agent(r[agent].to_owned()),
                "answer" => Target::None,
                _ => Target::DefaultRouting,
            };
            Row { text: r[text].to_owned(), expected }
        })
        .collect()
}

fn route(router: &Router<NoModel>, text: &str) -> Target {
    let screened = router.screen(text);
    router.conclude(text, None, screened, None).0.decision.target
}

fn exact(router: &Router<NoModel>, rows: &[&Row]) -> (usize, usize) {
    (rows.iter().filter(|r| route(router, &r.text) == r.expected).count(), rows.len())
}

fn pct((right, n): (usize, usize)) -> String {
    format!("{right}/{n} = {:.1}%", if n == 0 { 0.0 } else { 100.0 * right as f64 / n as f64 })
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let team = std::env::var("ROUTE").unwrap_or_else(|_| "98234710".into());
    let route_target = Target::Team(team.clone());
    let dir = std::env::temp_dir().join(format!("strictly-learning-curve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let mut config = RoutingConfig::load(root.join("config/routing.example.toml")).unwrap();
    config.audit.path = dir.join("audit.jsonl");
    let mut kept = 0;
    for e in config.examples.iter_mut().filter(|e| e.target.as_deref() == Some(team.as_str())) {
        let room = 3usize.saturating_sub(kept);
        e.phrases.truncate(room);
        kept += e.phrases.len();
    }
    config.examples.retain(|e| !e.phrases.is_empty());
    assert!(config.learning.enabled, "the example config turns learning on");
    let encoder = {
        let dir = strictly::model::resolve::resolve_encoder(None).unwrap_or_else(|e| panic!("{e}"));
        std::sync::Arc::new(strictly::encoder::SentenceEncoder::load(&dir).unwrap())
    };
    let cut = Router::builder(config.clone()).backend(strictly::backend::NoModel).encoder(encoder).no_audit().build().unwrap();

    let all = rows(&root.join("../shared/data/support/routing-human-dev.csv"));
    let of_route: Vec<&Row> = all.iter().filter(|r| r.expected == route_target).collect();
    let misrouted: Vec<&Row> = of_route.iter().copied().filter(|r| route(&cut, &r.text) != r.expected).collect();
    let (first, second) = misrouted.split_at(misrouted.len() / 2);
    println!(
        "route team {team}: {} phrase(s) kept; {} rows in routing-human-dev.csv, {} misrouted by the cut router",
        kept,
        of_route.len(),
        misrouted.len()
    );
    println!("corrections fed: {} (first half); measured on the second half: {}", first.len(), second.len());

    let everything: Vec<&Row> = all.iter().collect();
    let before = (exact(&cut, second), exact(&cut, &of_route), exact(&cut, &everything));

    let store = Files { audit: config.audit.path.clone() };
    let log = AuditLog::open(&config.audit.path).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let started = Instant::now();
    let mut router = cut;
    for row in first {
        let screened = router.screen(&row.text);
        let (_, record) = router.conclude(&row.text, None, screened, None);
        log.append(&record).unwrap();
        runtime.block_on(async {
            let (c, record) = correct(&store, &record.decision_id, &route_target, None, None).await.unwrap();
            learn(&store, &config.learning, &c, &record, &router).await.unwrap();
            let (learned, _) = store.phrases().await.unwrap();
            router = router.rebuild(config.with_learned(&learned)).unwrap().0;
        });
    }
    let learning_ms = started.elapsed().as_secs_f64() * 1e3;
    let (learned, _) = runtime.block_on(store.phrases()).unwrap();
    let after = (exact(&router, second), exact(&router, &of_route), exact(&router, &everything));

    println!(
        "learned phrases kept: {} (cap {} per route, near_duplicate {})",
        learned.len(),
        config.learning.max_per_route,
        config.learning.near_duplicate
    );
    println!("{:<44} {:>22} {:>22}", "exact routing", "before", "after");
    println!("{:<44} {:>22} {:>22}", "second half of the misrouted (held out)", pct(before.0), pct(after.0));
    println!("{:<44} {:>22} {:>22}", format!("every row of team {team}"), pct(before.1), pct(after.1));
    println!("{:<44} {:>22} {:>22}", "every row of routing-human-dev.csv", pct(before.2), pct(after.2));
    println!("{} corrections learned and routers rebuilt in {learning_ms:.0} ms", first.len());
    let _ = std::fs::remove_dir_all(&dir);
}
