//! [`StoreConfig`]: the `[store]` table of the server config, and [`redact_url`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Where the service keeps its record, keys and corrections (`[store]` in the server config).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/db` (or the key=value form). None: the embedded
    /// store. Also from `STRICTLY_STORE_URL`, which keeps the password out of files.
    pub url: Option<String>,
    /// Pooled connections to PostgreSQL. Default 8.
    pub pool_size: usize,
    /// Connecting to PostgreSQL (and waiting for a pooled connection) gives up after this.
    /// Default 5 s.
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// The embedded store's key file. Default: the audit file's name with `.keys.jsonl`.
    pub keys_path: Option<PathBuf>,
    /// How long a webhook claim without a reply holds its key before another replica may
    /// take it over. Default: twice the webhook deadline.
    #[serde(default, deserialize_with = "opt_duration")]
    pub lease: Option<Duration>,
    /// How long PostgreSQL keeps answered webhook keys. Default 24 h.
    #[serde(deserialize_with = "duration")]
    pub keys_kept_for: Duration,
    /// The spool of records written while the store is down. Default: `spool.jsonl` beside the
    /// audit file.
    pub spool_path: Option<PathBuf>,
    /// Records the spool holds at most; past it a decision cannot be recorded (`/v1/route`
    /// answers 503). Default 100000.
    pub spool_max: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            keys_path: None,
            lease: None,
            keys_kept_for: Duration::from_secs(24 * 3600),
            spool_path: None,
            spool_max: 100_000,
        }
    }
}

impl StoreConfig {
    /// Takes the URL from `STRICTLY_STORE_URL` when it is set.
    pub fn apply_env(&mut self) {
        if let Ok(url) = std::env::var("STRICTLY_STORE_URL") {
            if !url.trim().is_empty() {
                self.url = Some(url.trim().to_owned());
            }
        }
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(serde::de::Error::custom)
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// The URL with its password replaced by `***`, in both the URL form and the key=value form.
///
/// ```
/// use strictly::store::redact_url;
/// assert_eq!(redact_url("postgres://app:s3cret@db:5432/strictly"), "postgres://app:***@db:5432/strictly");
/// assert_eq!(redact_url("postgres://db/x?user=app&password=s3cret"), "postgres://db/x?user=app&password=***");
/// assert_eq!(redact_url("host=db user=app password=s3cret"), "host=db user=app password=***");
/// ```
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let auth_end = out[rest_start..].find(['/', '?']).map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..auth_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    // `password=...` in a query string or the key=value form.
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("password=") {
        let boundary = i == 0 || matches!(rest.as_bytes()[i - 1], b'?' | b'&' | b' ');
        let value_start = i + "password=".len();
        result.push_str(&rest[..value_start]);
        if boundary {
            let value = &rest[value_start..];
            let end = if let Some(quoted) = value.strip_prefix('\'') {
                quoted.find('\'').map_or(value.len(), |j| j + 2)
            } else {
                value.find(['&', ' ']).unwrap_or(value.len())
            };
            result.push_str("***");
            rest = &value[end..];
        } else {
            rest = &rest[value_start..];
        }
    }
    result.push_str(rest);
    result
}
