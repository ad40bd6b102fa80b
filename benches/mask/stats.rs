//! Quantiles, means and the per-engine pool of timings.

pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

pub fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

#[derive(Default)]
pub struct EngineStats {
    /// Per schema: median compile ms over its fresh compiles.
    pub compile_ms: Vec<f64>,
    pub mask_us: Vec<f64>,
    pub walks: usize,
    pub tokens: usize,
    pub errors: Vec<String>,
}
