-- Scenarios: one row per program with its status and current version.
CREATE TABLE scenarios (
    id          TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    origin      TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
--bun:split
-- Every saved definition; enrollments keep the version they started on.
CREATE TABLE scenario_versions (
    scenario_id  TEXT NOT NULL REFERENCES scenarios (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    definition   TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (scenario_id, version)
);
--bun:split
-- Enrollments: a customer in a scenario. entry_key makes entering idempotent
-- (once, per trigger event, per year). Due rows are claimed by next_run_at
-- under a lease (locked_by, locked_until).
CREATE TABLE enrollments (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    scenario_id      TEXT NOT NULL REFERENCES scenarios (id) ON DELETE CASCADE,
    version          INTEGER NOT NULL,
    customer_id      BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    entry_key        TEXT NOT NULL,
    state            TEXT NOT NULL,
    step             TEXT NOT NULL,
    step_started_at  TIMESTAMP NOT NULL,
    next_run_at      TIMESTAMP,
    locked_by        TEXT,
    locked_until     TIMESTAMP,
    variant          TEXT,
    holdout          BOOLEAN NOT NULL DEFAULT FALSE,
    context          TEXT NOT NULL DEFAULT '{}',
    entered_at       TIMESTAMP NOT NULL,
    finished_at      TIMESTAMP,
    exit_reason      TEXT,
    goal_at          TIMESTAMP,
    updated_at       TIMESTAMP NOT NULL,
    UNIQUE (scenario_id, customer_id, entry_key)
);
--bun:split
CREATE INDEX enrollments_due_idx ON enrollments (next_run_at) WHERE state = 'active';
--bun:split
CREATE INDEX enrollments_customer_idx ON enrollments (customer_id, state);
--bun:split
CREATE INDEX enrollments_scenario_idx ON enrollments (scenario_id, state, id);
--bun:split
-- Each step of an enrollment runs at most once: the row commits with the step.
CREATE TABLE step_runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    enrollment_id  BIGINT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,
    scenario_id    TEXT NOT NULL,
    step           TEXT NOT NULL,
    occurrence     INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    message_id     TEXT,
    worker         TEXT,
    due_at         TIMESTAMP,
    ran_at         TIMESTAMP NOT NULL,
    UNIQUE (enrollment_id, step, occurrence)
);
--bun:split
CREATE INDEX step_runs_scenario_idx ON step_runs (scenario_id, step);
--bun:split
-- Cursors: how far the engine has followed customer_events, and daily sweeps,
-- each held under a lease so that one replica works on it at a time.
CREATE TABLE scenario_cursors (
    name          TEXT PRIMARY KEY,
    position      BIGINT NOT NULL,
    locked_by     TEXT,
    locked_until  TIMESTAMP,
    updated_at    TIMESTAMP NOT NULL
);
