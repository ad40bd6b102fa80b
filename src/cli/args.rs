//! Flags shared by several commands: the backend, the local model, the example matching.

use std::path::PathBuf;
use std::sync::Arc;

/// Which backend routes, and the OpenAI backend's settings that flags override.
#[derive(clap::Args, Clone)]
pub struct BackendArgs {
    /// `local`: the GGUF model under the token mask, then the rules (the examples screen
    /// out-of-scope messages and vote at low confidence, if the config says so). `openai`: an
    /// OpenAI-compatible server (`[backend.openai]` in the config, `OPENAI_API_KEY`,
    /// `OPENAI_BASE_URL`). `examples`: no model; the examples' vote routes every message
    /// (3,594 rows in seconds, mostly fsyncing the audit log). Default: the config's
    /// `[backend] kind`, else local.
    #[arg(long)]
    pub backend: Option<strictly::backend::BackendKind>,
    #[command(flatten)]
    pub openai: OpenAiArgs,
}

/// The OpenAI backend's settings that flags override.
#[derive(clap::Args, Clone, Default)]
pub struct OpenAiArgs {
    /// The OpenAI backend's model (overrides `[backend.openai] model`).
    #[arg(long)]
    pub openai_model: Option<String>,
    /// The OpenAI backend's wire mode: responses, chat, tool or compat (llama-cpp-python).
    #[arg(long)]
    pub openai_mode: Option<strictly::backend::WireMode>,
    /// The OpenAI backend's base URL, ending in /v1 (overrides the config and OPENAI_BASE_URL).
    #[arg(long)]
    pub openai_base_url: Option<String>,
}

impl BackendArgs {
    /// The backend kind: the flag, else the config's.
    pub fn kind(&self, config: &strictly::routing::RoutingConfig) -> strictly::backend::BackendKind {
        self.backend.unwrap_or(config.backend.kind)
    }

    /// The config's OpenAI settings with the flags applied.
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub fn openai_settings(&self, config: &strictly::routing::RoutingConfig) -> strictly::backend::OpenAiSettings {
        let mut s = config.backend.openai.clone();
        if let Some(m) = &self.openai.openai_model {
            s.model = m.clone();
        }
        if let Some(m) = self.openai.openai_mode {
            s.mode = m;
        }
        if let Some(u) = &self.openai.openai_base_url {
            s.base_url = Some(u.clone());
        }
        s
    }

    /// The chosen backend; the local model is loaded only when it is the one.
    pub fn build(
        &self,
        config: &strictly::routing::RoutingConfig,
        model: &ModelArgs,
    ) -> Result<strictly::backend::AnyBackend, Box<dyn std::error::Error>> {
        use strictly::backend::{AnyBackend, BackendKind, NoModel};
        match self.kind(config) {
            BackendKind::Local => {
                let (model, options) = model.load()?;
                Ok(AnyBackend::Local(strictly::backend::local::LocalBackend::new(model, options)))
            }
            #[cfg(feature = "openai")]
            BackendKind::OpenAi => {
                Ok(AnyBackend::OpenAi(strictly::backend::openai::OpenAiBackend::from_env(self.openai_settings(config))?))
            }
            #[cfg(not(feature = "openai"))]
            BackendKind::OpenAi => Err("this strictly was built without the `openai` feature".into()),
            BackendKind::Examples => Ok(AnyBackend::None(NoModel)),
        }
    }
}

/// How the example phrases are matched to a message.
#[derive(clap::Args, Clone)]
pub struct MatchArgs {
    /// Sentence encoder folder (default: the resolved all-MiniLM-L6-v2).
    #[arg(long, env = "STRICTLY_ENCODER")]
    pub encoder: Option<PathBuf>,
    /// Match example phrases by shared words only, without the sentence encoder.
    #[arg(long)]
    pub words_only: bool,
}

impl MatchArgs {
    /// The router's builder, matching by meaning unless asked not to.
    pub fn apply<B>(
        &self,
        builder: strictly::routing::RouterBuilder<B>,
    ) -> Result<strictly::routing::RouterBuilder<B>, Box<dyn std::error::Error>> {
        if self.words_only {
            return Ok(builder.words_only());
        }
        let dir = strictly::model::resolve::resolve_encoder(self.encoder.as_deref())?;
        let encoder = std::sync::Arc::new(strictly::encoder::SentenceEncoder::load(&dir)?);
        Ok(builder.encoder(encoder))
    }
}

/// Options shared by the commands that run the local model.
#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// GGUF model (default: the resolved default model).
    #[arg(long, env = "STRICTLY_MODEL")]
    pub model: Option<PathBuf>,
    /// Token cap of the output.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// CPU threads for the model (default: the machine's cores).
    #[arg(long, env = "STRICTLY_THREADS")]
    pub threads: Option<usize>,
    /// Re-quantize weights at load: keep, q8-0 (fastest) or q4-0 (smallest).
    #[arg(long, default_value = "q8-0")]
    pub requantize: String,
    /// Disable batched fast-forward of forced tokens.
    #[arg(long)]
    pub no_fast_forward: bool,
    /// Tokens guessed ahead from earlier text and checked in one pass (greedy only; 0: off).
    #[arg(long, default_value_t = 8)]
    pub lookahead: usize,
    /// OpenAI's frequency penalty (-2 to 2): an output token's logit drops this much per use.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub frequency_penalty: f32,
    /// OpenAI's presence penalty (-2 to 2): a token already output has its logit lowered by this.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub presence_penalty: f32,
    /// llama.cpp's repeat penalty over the last 64 tokens (1: off; llama.cpp's server uses 1.1).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
}

impl ModelArgs {
    pub fn load(&self) -> Result<(Arc<strictly::model::local::LocalModel>, strictly::decode::DecodeOptions), Box<dyn std::error::Error>> {
        if let Some(n) = self.threads {
            // candle reads these when its thread pool starts.
            std::env::set_var("RAYON_NUM_THREADS", n.to_string());
            std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
        }
        let requantize = match self.requantize.as_str() {
            "keep" => strictly::model::local::Requantize::Keep,
            "q8-0" | "q8_0" => strictly::model::local::Requantize::Q8_0,
            "q4-0" | "q4_0" => strictly::model::local::Requantize::Q4_0,
            other => return Err(format!("--requantize must be keep, q8-0 or q4-0, not {other}").into()),
        };
        let options = strictly::decode::DecodeOptions {
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
            fast_forward: !self.no_fast_forward,
            lookahead: self.lookahead,
            frequency_penalty: self.frequency_penalty,
            presence_penalty: self.presence_penalty,
            repeat_penalty: self.repeat_penalty,
            ..Default::default()
        };
        // Before the model loads: a bad flag fails at once.
        options.check_penalties().map_err(|(name, rule)| format!("--{} must be {rule}", name.replace('_', "-")))?;
        let path = strictly::model::resolve::resolve(self.model.as_deref())?;
        let model = strictly::model::local::LocalModel::load(&path, &strictly::model::local::LoadOptions { requantize })?;
        Ok((Arc::new(model), options))
    }
}
