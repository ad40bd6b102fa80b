-- The shared store of `strictly serve` (src/store/postgres.rs applies this at start, in a
-- transaction, under an advisory lock, and records it in schema_migrations).

-- One row per decision: the audit line (`record`, schema in src/routing/audit.rs) and the
-- columns the reports group by. `id` is the record's `decision_id`, so writing a record twice
-- (a replayed spool) leaves one row.
CREATE TABLE decisions (
    id          text PRIMARY KEY,
    message_id  text NOT NULL,
    time        timestamptz NOT NULL,
    action      text NOT NULL,
    path        text,
    latency_ms  double precision NOT NULL,
    record      jsonb NOT NULL
);
CREATE INDEX decisions_time ON decisions (time);
CREATE INDEX decisions_message_id ON decisions (message_id);

-- Webhook idempotency keys. A replica claims a key by inserting its row (owner, claimed_at);
-- it stores the reply, with the decision's id, in the transaction that writes the decision.
-- A claim with no reply whose lease has passed may be taken over by another replica.
CREATE TABLE webhook_keys (
    key          text PRIMARY KEY,
    owner        text NOT NULL,
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    decision_id  text,
    reply        jsonb
);
CREATE INDEX webhook_keys_claimed_at ON webhook_keys (claimed_at);

-- Corrections of decisions (what the decision should have been), for reports and fitting.
CREATE TABLE corrections (
    id          bigserial PRIMARY KEY,
    time        timestamptz NOT NULL DEFAULT now(),
    message_id  text NOT NULL,
    action      text NOT NULL,
    target      jsonb NOT NULL,
    note        text,
    author      text
);
CREATE INDEX corrections_message_id ON corrections (message_id);
