//! Routing each labelled row through the deployment's router.

use super::{score, EvalError, EvalReport, Row, RowResult};
use crate::backend::Backend;
use crate::routing::Router;
use crate::routing::Target;

fn target_label(t: &Target) -> String {
    match t {
        Target::None => "none".into(),
        Target::Agent(a) => format!("agent:{a}"),
        Target::Team(id) => format!("team:{id}"),
        Target::DefaultRouting => "default".into(),
    }
}

/// Routes every row and scores the decisions. `on_row` sees each result.
pub async fn evaluate<B: Backend + Send + Sync + 'static>(
    router: &Router<B>,
    rows: &[Row],
    mut on_row: impl FnMut(usize, &RowResult),
) -> Result<EvalReport, EvalError> {
    let validator = crate::schema::validator(&router.schema().schema).ok();
    let mut results = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let (result, _) = route_row(router, validator.as_ref(), row).await?;
        on_row(i, &result);
        results.push(result);
    }
    Ok(score(results, router.backend().name(), router.backend().model()))
}

/// Routes one row and scores its decision; `validator` checks the model's output against the
/// deployment schema (build it once with [`crate::schema::validator`]). The routing record
/// comes back too, for callers that want more than the score (usage, the backend's error).
pub async fn route_row<B: Backend + Send + Sync + 'static>(
    router: &Router<B>,
    validator: Option<&jsonschema::Validator>,
    row: &Row,
) -> Result<(RowResult, crate::routing::Routed), EvalError> {
    let routed = router.route(&row.text, Some(&row.id)).await?;
    let d = &routed.decision;
    let refused = d.rules.iter().any(|r| matches!(r.as_str(), "refusal" | "prompt_injection"));
    let valid = match (&routed.answer.verdict.output, validator) {
        (Some(v), Some(val)) => val.is_valid(v),
        // A refusal short-circuited before the model produced output.
        (None, _) => routed.answer.backend_error.is_none(),
        (Some(_), None) => false,
    };
    let action = d.action.as_str().to_string();
    let target = target_label(&d.target);
    let result = RowResult {
        id: row.id.clone(),
        source: row.source.clone(),
        intent: row.intent.clone(),
        expected_action: row.expected_action.clone(),
        expected_target: row.expected_target(),
        exact: action == row.expected_action && target == row.expected_target(),
        action,
        target,
        valid,
        refused,
        rules: d.rules.iter().map(|r| r.as_str().to_string()).collect(),
        model_asked: routed.answer.verdict.output.is_some() || routed.answer.backend_error.is_some(),
        model_confidence: d.model_confidence,
        confidence: d.model_confidence.or(d.examples_confidence),
        latency_ms: routed.latency_ms,
    };
    Ok((result, routed))
}
