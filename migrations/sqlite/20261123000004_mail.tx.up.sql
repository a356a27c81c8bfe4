-- Messages: every mail is a row before it is a request to the provider.
-- public_id is sent to the provider as the user variable message_id and comes
-- back in every event; idempotency_key makes a second enqueue return the first row.
CREATE TABLE messages (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id            TEXT NOT NULL UNIQUE,
    idempotency_key      TEXT NOT NULL UNIQUE,
    customer_id          BIGINT REFERENCES customers (id) ON DELETE SET NULL,
    recipient            TEXT NOT NULL,
    recipient_name       TEXT,
    template             TEXT NOT NULL,
    provider_template    TEXT,
    template_values      TEXT NOT NULL DEFAULT '{}',
    locale               TEXT,
    kind                 TEXT NOT NULL,
    subject              TEXT NOT NULL,
    html                 TEXT NOT NULL,
    text                 TEXT NOT NULL,
    unsubscribe_url      TEXT,
    program              TEXT,
    scenario             TEXT,
    step                 TEXT,
    variant              TEXT,
    campaign             TEXT,
    state                TEXT NOT NULL,
    provider             TEXT,
    provider_message_id  TEXT,
    attempts             INTEGER NOT NULL DEFAULT 0,
    last_error           TEXT,
    maybe_sent           BOOLEAN NOT NULL DEFAULT FALSE,
    next_attempt_at      TIMESTAMP NOT NULL,
    locked_by            TEXT,
    locked_until         TIMESTAMP,
    sent_at              TIMESTAMP,
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX messages_due_idx ON messages (state, next_attempt_at);
--bun:split
CREATE INDEX messages_customer_idx ON messages (customer_id, id);
--bun:split
CREATE INDEX messages_recipient_idx ON messages (recipient, id);
--bun:split
CREATE INDEX messages_provider_message_idx ON messages (provider_message_id);
--bun:split
-- Provider events against messages, idempotent on the provider event id.
CREATE TABLE message_events (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    provider_event_id  TEXT NOT NULL UNIQUE,
    provider           TEXT NOT NULL,
    message_id         BIGINT REFERENCES messages (id) ON DELETE SET NULL,
    customer_id        BIGINT REFERENCES customers (id) ON DELETE SET NULL,
    kind               TEXT NOT NULL,
    occurred_at        TIMESTAMP NOT NULL,
    recipient          TEXT,
    url                TEXT,
    machine_open       BOOLEAN NOT NULL DEFAULT FALSE,
    severity           TEXT,
    reason             TEXT,
    raw                TEXT NOT NULL DEFAULT '{}',
    created_at         TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX message_events_message_idx ON message_events (message_id, occurred_at);
--bun:split
CREATE INDEX message_events_kind_idx ON message_events (kind, occurred_at);
--bun:split
-- Suppressions: addresses no marketing mail goes to (hard bounces and
-- complaints also stop transactional mail). One row per address and reason.
CREATE TABLE suppressions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    address_hash  TEXT NOT NULL,
    address       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    source        TEXT NOT NULL,
    detail        TEXT,
    created_at    TIMESTAMP NOT NULL,
    UNIQUE (address_hash, reason)
);
--bun:split
-- Mailgun webhook tokens seen within the freshness window: a token seen
-- twice is a replay.
CREATE TABLE mailgun_webhook_tokens (
    token    TEXT PRIMARY KEY,
    seen_at  TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX mailgun_webhook_tokens_seen_idx ON mailgun_webhook_tokens (seen_at);
--bun:split
-- Templates stored in the database, one row per name and locale; they add to
-- or override the built-in and file templates.
CREATE TABLE mail_templates (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    locale      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    html        TEXT NOT NULL,
    text        TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    UNIQUE (name, locale)
);
--bun:split
-- Fixed-window counters of rate limits shared by every replica.
CREATE TABLE rate_limits (
    key           TEXT PRIMARY KEY,
    window_start  TIMESTAMP NOT NULL,
    count         INTEGER NOT NULL
);
--bun:split
-- Where the Mailgun events poller stopped.
CREATE TABLE mail_poll_state (
    name        TEXT PRIMARY KEY,
    position    TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
