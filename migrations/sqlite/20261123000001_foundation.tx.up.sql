-- Customers: one row per person known to Refrain, keyed internally by id.
-- public_id is an unguessable id of our own; external_id is the id the store
-- GraphQL API gives the customer, unique per external_source.
CREATE TABLE customers (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id           TEXT NOT NULL UNIQUE,
    external_id         TEXT,
    external_source     TEXT,
    email               TEXT,
    email_normalized    TEXT UNIQUE,
    first_name          TEXT,
    last_name           TEXT,
    locale              TEXT,
    time_zone           TEXT,
    source              TEXT NOT NULL DEFAULT 'online',
    consent_state       TEXT NOT NULL DEFAULT 'unknown',
    consent_at          TIMESTAMP,
    consent_source      TEXT,
    consent_method      TEXT,
    consent_proof       TEXT NOT NULL DEFAULT '{}',
    attributes          TEXT NOT NULL DEFAULT '{}',
    preferences         TEXT NOT NULL DEFAULT '{}',
    tags                TEXT NOT NULL DEFAULT '[]',
    orders_count        INTEGER NOT NULL DEFAULT 0,
    total_spent_minor   BIGINT NOT NULL DEFAULT 0,
    currency            TEXT,
    first_order_at      TIMESTAMP,
    last_order_at       TIMESTAMP,
    last_open_at        TIMESTAMP,
    last_click_at       TIMESTAMP,
    last_visit_at       TIMESTAMP,
    stage               TEXT NOT NULL DEFAULT 'SUBSCRIBER',
    stage_since         TIMESTAMP,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL
);
--bun:split
CREATE UNIQUE INDEX customers_external_idx ON customers (external_source, external_id);
--bun:split
CREATE INDEX customers_external_id_idx ON customers (external_id);
--bun:split
CREATE INDEX customers_created_at_idx ON customers (created_at);
--bun:split
CREATE INDEX customers_source_idx ON customers (source);
--bun:split
-- The customer event log is append only: nothing updates or deletes its rows
-- except the erasure of a customer.
CREATE TABLE customer_events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id      BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    type             TEXT NOT NULL,
    occurred_at      TIMESTAMP NOT NULL,
    properties       TEXT NOT NULL DEFAULT '{}',
    source           TEXT NOT NULL,
    idempotency_key  TEXT UNIQUE,
    created_at       TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX customer_events_customer_idx ON customer_events (customer_id, occurred_at);
--bun:split
CREATE INDEX customer_events_type_idx ON customer_events (type, occurred_at);
--bun:split
CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL UNIQUE,
    hash          BLOB NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    last_used_at  TIMESTAMP,
    revoked_at    TIMESTAMP
);
