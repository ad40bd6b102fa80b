-- Corrections that teach (src/store/feedback.rs, src/store/phrases.rs).

-- A correction's own id (`c-...`, what POST /v1/feedback answers) and the decision it
-- corrects. Corrections written before this migration keep neither; they are read with
-- their bigserial id as their id.
ALTER TABLE corrections ADD COLUMN correction_id text;
ALTER TABLE corrections ADD COLUMN decision_id text;
CREATE UNIQUE INDEX corrections_correction_id ON corrections (correction_id);
CREATE INDEX corrections_decision_id ON corrections (decision_id);

-- Learned phrases: a corrected decision's customer text (as the audit redacted it), voted
-- for the route the correction names, when the routing config's [learning] is on.
-- `target` is the team id or agent email as the config spells it (null for answer and
-- default_fallback).
CREATE TABLE learned_phrases (
    id             text PRIMARY KEY,
    time           timestamptz NOT NULL DEFAULT now(),
    action         text NOT NULL,
    target         text,
    text           text NOT NULL,
    correction_id  text,
    decision_id    text
);
CREATE INDEX learned_phrases_time ON learned_phrases (time);

-- Bumped in the transaction of every change to learned_phrases: a replica compares it with
-- the one it loaded to know whether to reload.
CREATE TABLE phrase_generation (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    generation  bigint NOT NULL
);
INSERT INTO phrase_generation (one, generation) VALUES (true, 0);
