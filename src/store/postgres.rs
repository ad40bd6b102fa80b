//! The PostgreSQL store: tokio-postgres over a deadpool pool, without TLS.
//!
//! At connect the migrations in `migrations/` (compiled in, [`MIGRATIONS`]) are applied in one
//! transaction under an advisory lock, so replicas starting together migrate once, and each
//! is recorded in `schema_migrations`. A database at a version newer than [`MIGRATIONS`] knows
//! is refused ([`StoreError::NewerSchema`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde_json::Value;
use tokio_postgres::NoTls;

use super::{redact_url, Claim, Correction, Finished, Row, StoreConfig, StoreError};
use crate::routing::audit::new_decision_id;

/// The schema's migrations: version, name, SQL.
pub const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "init", include_str!("../../migrations/0001_init.sql")), (2, "learning", include_str!("../../migrations/0002_learning.sql"))];

/// The advisory lock migrations run under (any constant shared by the replicas).
const MIGRATION_LOCK: i64 = 0x7374_7269_6374_6c79; // "strictly"

/// Answered keys are pruned once per this many claims.
const PRUNE_EVERY: u64 = 1000;

/// A pool of connections to one database.
pub struct PgStore {
    pool: Pool,
    url: String,
    owner: String,
    keys_kept_for: Duration,
    claims: AtomicU64,
}

fn query_error(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::query_because(describe(&e), e)
}

/// The error and its causes (tokio-postgres shows a server's refusal only as a cause).
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

const INSERT_DECISION: &str = "INSERT INTO decisions (id, message_id, time, action, path, latency_ms, record) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING";

/// A claim: the key's row, unless some replica has it.
const CLAIM_KEY: &str = "INSERT INTO webhook_keys (key, owner) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";

/// A claimed key's reply and its decision's record, written by one statement: the record is
/// inserted only when the key is still ours and unanswered, and the count of keys taken (0 or
/// 1) comes back. The hot path's two statements, prepared once per connection.
const FINISH: &str = "WITH taken AS (\
         UPDATE webhook_keys SET reply = $3, decision_id = $4 WHERE key = $1 AND owner = $2 AND reply IS NULL RETURNING key\
     ), recorded AS (\
         INSERT INTO decisions (id, message_id, time, action, path, latency_ms, record) \
         SELECT $4, $5::text, $6::timestamptz, $7::text, $8::text, $9::float8, $10::jsonb WHERE EXISTS (SELECT 1 FROM taken) ON CONFLICT (id) DO NOTHING\
     ) SELECT count(*) FROM taken";

impl PgStore {
    /// Connects (one connection is opened now, so a wrong URL, host or password fails here)
    /// and migrates.
    pub async fn connect(url: &str, config: &StoreConfig) -> Result<Self, StoreError> {
        let shown = redact_url(url);
        let mut pg: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| StoreError::Url {
            url: shown.clone(),
            reason: describe(&e),
            source: Some(Box::new(e)),
        })?;
        pg.connect_timeout(config.connect_timeout);
        if pg.get_application_name().is_none() {
            pg.application_name("strictly");
        }
        let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let timeout = Some(config.connect_timeout);
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(timeout)
            .build()
            .map_err(|e| StoreError::Url { url: shown.clone(), reason: describe(&e), source: Some(Box::new(e)) })?;
        let mut client =
            pool.get().await.map_err(|e| StoreError::Connect { url: shown.clone(), reason: describe(&e), source: Some(Box::new(e)) })?;
        migrate(&mut client, &shown).await?;
        drop(client);
        let store = PgStore {
            pool,
            url: shown,
            owner: format!("{}-{}", std::process::id(), new_decision_id()),
            keys_kept_for: config.keys_kept_for,
            claims: AtomicU64::new(0),
        };
        store.prune().await?;
        tracing::info!(store = %store.url, "PostgreSQL store open");
        Ok(store)
    }

    /// The URL, password masked.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// This process's name in `webhook_keys.owner`.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(query_error)
    }

    /// A pooled connection, for the store's other files.
    pub(super) async fn pool_client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.client().await
    }

    /// Inserts the record; a second write of the same `decision_id` changes nothing.
    pub async fn append(&self, row: &Row) -> Result<(), StoreError> {
        let client = self.client().await?;
        let insert = client.prepare_cached(INSERT_DECISION).await.map_err(query_error)?;
        client
            .execute(&insert, &[&row.decision_id, &row.message_id, &row.time, &row.action, &row.path, &row.latency_ms, &row.line])
            .await
            .map_err(query_error)?;
        Ok(())
    }

    /// Claims `key` (see the [module docs](super)).
    pub async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        if self.claims.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune().await?;
        }
        let client = self.client().await?;
        let insert = client.prepare_cached(CLAIM_KEY).await.map_err(query_error)?;
        let inserted = client.execute(&insert, &[&key, &self.owner]).await.map_err(query_error)?;
        if inserted == 1 {
            return Ok(Claim::Mine);
        }
        // Ours already (a retry after a failed attempt), or a dead owner's whose lease passed.
        let taken = client
            .execute(
                "UPDATE webhook_keys SET owner = $2, claimed_at = now() \
                 WHERE key = $1 AND reply IS NULL AND (owner = $2 OR claimed_at < now() - make_interval(secs => $3))",
                &[&key, &self.owner, &lease.as_secs_f64()],
            )
            .await
            .map_err(query_error)?;
        if taken == 1 {
            return Ok(Claim::Mine);
        }
        let row = client.query_opt("SELECT reply FROM webhook_keys WHERE key = $1", &[&key]).await.map_err(query_error)?;
        Ok(match row.and_then(|r| r.get::<_, Option<Value>>(0)) {
            Some(reply) => Claim::Done(reply),
            None => Claim::Busy,
        })
    }

    /// Stores the reply and the record in one statement (so one transaction and one round
    /// trip), if the claim is still ours.
    pub async fn finish(&self, key: &str, row: &Row, reply: &Value) -> Result<Finished, StoreError> {
        let client = self.client().await?;
        let finish = client.prepare_cached(FINISH).await.map_err(query_error)?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 10] =
            [&key, &self.owner, reply, &row.decision_id, &row.message_id, &row.time, &row.action, &row.path, &row.latency_ms, &row.line];
        let taken: i64 = client.query_one(&finish, &params).await.map_err(query_error)?.get(0);
        Ok(if taken == 0 { Finished::Lost } else { Finished::Stored })
    }

    /// A spooled decision: the record, and the key's reply unless it has one.
    pub async fn settle(&self, key: &str, row: &Row, reply: &Value) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(query_error)?;
        tx.execute(
            "INSERT INTO webhook_keys (key, owner, decision_id, reply) VALUES ($1, $2, $3, $4)              ON CONFLICT (key) DO UPDATE SET reply = EXCLUDED.reply, decision_id = EXCLUDED.decision_id              WHERE webhook_keys.reply IS NULL",
            &[&key, &self.owner, &row.decision_id, reply],
        )
        .await
        .map_err(query_error)?;
        insert_decision(&*tx, row).await?;
        tx.commit().await.map_err(query_error)
    }

    /// Deletes answered keys older than `keys_kept_for`.
    async fn prune(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM webhook_keys WHERE reply IS NOT NULL AND claimed_at < now() - make_interval(secs => $1)",
                &[&self.keys_kept_for.as_secs_f64()],
            )
            .await
            .map_err(query_error)?;
        Ok(())
    }

    /// Inserts a correction.
    pub async fn add_correction(&self, c: &Correction) -> Result<(), StoreError> {
        let time = humantime::parse_rfc3339_weak(&c.time)
            .map_err(|e| StoreError::query_because(format!("correction time {:?}: {e}", c.time), e))?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO corrections (time, message_id, action, target, note, author, correction_id, decision_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), $8)",
                &[&time, &c.message_id, &c.action.as_str(), &c.target, &c.note, &c.author, &c.id, &c.decision_id],
            )
            .await
            .map_err(query_error)?;
        Ok(())
    }

    /// Corrections at or after `since`, oldest first.
    pub async fn corrections(&self, since: Option<SystemTime>) -> Result<Vec<Correction>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT time, message_id, action, target, note, author, coalesce(correction_id, id::text), decision_id FROM corrections \
                 WHERE $1::timestamptz IS NULL OR time >= $1 ORDER BY time, id",
                &[&since],
            )
            .await
            .map_err(query_error)?;
        rows.iter()
            .map(|r| {
                let action: String = r.get(2);
                Ok(Correction {
                    id: r.get(6),
                    decision_id: r.get(7),
                    time: humantime::format_rfc3339_millis(r.get::<_, SystemTime>(0)).to_string(),
                    message_id: r.get(1),
                    action: serde_json::from_value(Value::String(action)).map_err(query_error)?,
                    target: r.get(3),
                    note: r.get(4),
                    author: r.get(5),
                })
            })
            .collect()
    }

    /// The record whose `decision_id` is `id`, else the newest whose message id is `id`.
    pub async fn record(&self, id: &str) -> Result<Option<Value>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT record FROM decisions WHERE id = $1 OR message_id = $1 \
                 ORDER BY (id = $1) DESC, time DESC, id DESC LIMIT 1",
                &[&id],
            )
            .await
            .map_err(query_error)?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Records at or after `since`, oldest first; the last `limit`.
    pub async fn records(&self, since: Option<SystemTime>, limit: Option<usize>) -> Result<Vec<Value>, StoreError> {
        let client = self.client().await?;
        let limit = limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let rows = client
            .query(
                "SELECT record FROM (SELECT record, time, id FROM decisions \
                 WHERE $1::timestamptz IS NULL OR time >= $1 ORDER BY time DESC, id DESC LIMIT $2) t ORDER BY time, id",
                &[&since, &limit],
            )
            .await
            .map_err(query_error)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

async fn insert_decision(client: &impl tokio_postgres::GenericClient, row: &Row) -> Result<(), StoreError> {
    client
        .execute(INSERT_DECISION, &[&row.decision_id, &row.message_id, &row.time, &row.action, &row.path, &row.latency_ms, &row.line])
        .await
        .map_err(query_error)?;
    Ok(())
}

/// Applies the migrations the database lacks, in one transaction under the advisory lock.
async fn migrate(client: &mut deadpool_postgres::Client, url: &str) -> Result<(), StoreError> {
    let failed = |e: tokio_postgres::Error| StoreError::Connect {
        url: url.to_owned(),
        reason: format!("migrating: {}", describe(&e)),
        source: Some(Box::new(e)),
    };
    let tx = client.transaction().await.map_err(failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(failed)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
         version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(failed)?;
    let found: i64 = tx.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[]).await.map_err(failed)?.get(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if found > known {
        return Err(StoreError::NewerSchema { url: url.to_owned(), found, known });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        tx.batch_execute(sql).await.map_err(failed)?;
        tx.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &[version, name]).await.map_err(failed)?;
        tracing::info!(version, name, "store migrated");
    }
    tx.commit().await.map_err(failed)
}
