//! Fits the examples' vote to labelled messages: `strictly tune`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use strictly::tune::{Grid, Objective, DEFAULT_OBJECTIVE};

use super::args::MatchArgs;

/// The flags of `strictly tune`.
#[derive(clap::Args)]
pub struct TuneArgs {
    /// Labelled messages: `id,source,text,intent,category,expected_action,expected_team,expected_agent`
    /// (the format of `strictly eval`).
    pub csv: PathBuf,
    /// Routing config (TOML) whose `[vote]` values are tuned; changed only with --write.
    #[arg(long, default_value = "config/routing.example.toml")]
    pub config: PathBuf,
    /// Folds of the cross-validation (at least 2).
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// What is maximised within which bounds: `max METRIC; METRIC >= BOUND; METRIC <= BOUND`,
    /// metrics exact, in_scope_exact, oos_recall, wrong_route (percent); a bound is a number or
    /// `current` plus or minus points (the current values' figure on the same rows).
    #[arg(long, default_value = DEFAULT_OBJECTIVE)]
    pub objective: Objective,
    /// Seed of the folds' shuffle: the same file and seed give the same result.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder: report.md, report.json and patch.toml.
    #[arg(long, default_value = "out/tune")]
    pub out: PathBuf,
    /// Apply the patch to --config (a backup is kept beside it), when the tuned values beat the
    /// current ones on the held-out folds. Without it, nothing is changed.
    #[arg(long)]
    pub write: bool,
    /// Candidates listed in the report.
    #[arg(long, default_value_t = 15)]
    pub top: usize,
    #[command(flatten)]
    pub matching: MatchArgs,
}

/// Runs the command.
pub fn run(args: TuneArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let TuneArgs { csv, config, folds, objective, seed, out, write, top, matching } = args;
    let cfg = strictly::routing::RoutingConfig::load(&config)?;
    if cfg.examples.iter().all(|r| r.phrases.is_empty()) {
        return Err(strictly::tune::TuneError::NoPhrases.into());
    }
    let (rows, expected) = strictly::tune::read_labelled(&csv, &cfg)?;
    let vote = if matching.words_only {
        strictly::routing::ExampleVote::new(&cfg)
    } else {
        let dir = strictly::model::resolve::resolve_encoder(matching.encoder.as_deref())?;
        let encoder = std::sync::Arc::new(strictly::encoder::SentenceEncoder::load(&dir)?);
        strictly::routing::ExampleVote::with_encoder(&cfg, encoder)?
    };
    let started = Instant::now();
    let progress = indicatif::ProgressBar::new(rows.len() as u64);
    progress.set_style(indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} messages compared with the phrases {elapsed} (eta {eta})",
    )?);
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let similarities = vote.similarities_of_many(&texts, |done| progress.set_position(done as u64))?;
    progress.finish_and_clear();
    let compared = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let candidates = Grid::default().candidates(&cfg.vote);
    let replay = strictly::tune::Replay::new(&cfg, vote.tally(), &texts, &similarities, &expected, candidates);
    let all: Vec<usize> = (0..rows.len()).collect();
    let tuning = strictly::tune::cross_validate(&replay, &all, folds, seed, &objective)?;
    let replayed = started.elapsed().as_secs_f64();
    let report = strictly::tune::Report::new(
        &csv.display().to_string(),
        &config.display().to_string(),
        !matching.words_only,
        (compared, replayed),
        &rows,
        &replay,
        tuning,
        top,
    );
    let write_file = |name: &str, text: &str| {
        let path = out.join(name);
        std::fs::create_dir_all(&out).and_then(|_| std::fs::write(&path, text)).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write_file("report.md", &strictly::tune::markdown(&report, 200))?;
    write_file("report.json", &strictly::tune::to_json(&report))?;
    write_file("patch.toml", &strictly::tune::patch_toml(&report))?;
    print!("{}", summary(&report));
    println!("reports in {}: report.md, report.json, patch.toml", out.display());
    if write {
        if report.tuning.better {
            let applied = strictly::tune::apply_patch(&config, &report)?;
            println!("wrote the tuned [vote] values into {} (backup: {})", config.display(), applied.backup.display());
        } else {
            println!("--write: nothing written; the tuned values do not beat the current ones on the held-out folds");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The lines an operator reads first: the bounds, the values and the held-out figures.
fn summary(r: &strictly::tune::Report) -> String {
    let t = &r.tuning;
    let mut s = format!(
        "{} rows, {} folds, {} candidates; compared in {:.1} s, replayed in {:.1} s\nobjective: {}\n",
        t.rows.len(),
        t.folds.len(),
        r.candidates,
        r.seconds.0,
        r.seconds.1,
        t.objective
    );
    for (c, v) in &t.chosen.bounds {
        s += &format!("  bound on all rows: {c} = {v:.2}\n");
    }
    let v = |x: &strictly::tune::Values| {
        format!("k {} power {} min_similarity {} lexical_weight {}", x.k, x.power, x.min_similarity, x.lexical_weight)
    };
    let m = |x: &strictly::tune::Metrics| {
        format!(
            "exact {:.1}%, oos recall {}, wrong route {:.1}%",
            x.exact,
            x.oos_recall.map_or("-".into(), |o| format!("{o:.1}%")),
            x.wrong_route
        )
    };
    s += &format!("current: {}\nchosen:  {}\n", v(&r.current), v(&r.chosen));
    s += &format!("held out, current: {}\nheld out, tuned:   {}\n", m(&t.cv_current), m(&t.cv_tuned));
    s += if t.chosen.candidate == 0 {
        "the current values are the best candidate\n"
    } else if t.better {
        "the tuned values beat the current ones on the held-out folds\n"
    } else {
        "the tuned values do not beat the current ones on the held-out folds: keep the current values\n"
    };
    s
}
