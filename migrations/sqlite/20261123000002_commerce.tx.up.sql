-- The inbox: every verified webhook delivery, raw, committed before the
-- acknowledgement. Workers claim PENDING rows (and PROCESSING rows whose
-- lease ran out) and mark them DONE, IGNORED or, after repeated failures, FAILED.
CREATE TABLE inbound_events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    source           TEXT NOT NULL,
    topic            TEXT NOT NULL,
    dedupe_key       TEXT NOT NULL,
    headers          TEXT NOT NULL DEFAULT '{}',
    body             BLOB NOT NULL,
    status           TEXT NOT NULL DEFAULT 'PENDING',
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    received_at      TIMESTAMP NOT NULL,
    next_attempt_at  TIMESTAMP NOT NULL,
    locked_by        TEXT,
    locked_until     TIMESTAMP,
    processed_at     TIMESTAMP,
    UNIQUE (source, dedupe_key)
);
--bun:split
CREATE INDEX inbound_events_due_idx ON inbound_events (status, next_attempt_at);
--bun:split
CREATE INDEX inbound_events_lease_idx ON inbound_events (status, locked_until);
--bun:split
CREATE TABLE orders (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    source               TEXT NOT NULL,
    external_id          TEXT NOT NULL,
    customer_id          BIGINT REFERENCES customers (id) ON DELETE SET NULL,
    number               TEXT,
    status               TEXT NOT NULL,
    total_minor          BIGINT NOT NULL DEFAULT 0,
    refunded_minor       BIGINT NOT NULL DEFAULT 0,
    currency             TEXT,
    items                TEXT NOT NULL DEFAULT '[]',
    cart_token           TEXT,
    checkout_token       TEXT,
    contact_email        TEXT,
    placed_at            TIMESTAMP NOT NULL,
    paid_at              TIMESTAMP,
    fulfilled_at         TIMESTAMP,
    refunded_at          TIMESTAMP,
    cancelled_at         TIMESTAMP,
    counted              BOOLEAN NOT NULL DEFAULT FALSE,
    platform_updated_at  TIMESTAMP,
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL,
    UNIQUE (source, external_id)
);
--bun:split
CREATE INDEX orders_customer_idx ON orders (customer_id, placed_at);
--bun:split
CREATE TABLE carts (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    source               TEXT NOT NULL,
    token                TEXT NOT NULL,
    cart_token           TEXT,
    customer_id          BIGINT REFERENCES customers (id) ON DELETE SET NULL,
    email                TEXT,
    items                TEXT NOT NULL DEFAULT '[]',
    value_minor          BIGINT NOT NULL DEFAULT 0,
    currency             TEXT,
    recovery_url         TEXT,
    status               TEXT NOT NULL DEFAULT 'open',
    last_activity_at     TIMESTAMP NOT NULL,
    abandoned_at         TIMESTAMP,
    converted_at         TIMESTAMP,
    order_external_id    TEXT,
    platform_updated_at  TIMESTAMP,
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL,
    UNIQUE (source, token)
);
--bun:split
CREATE INDEX carts_due_idx ON carts (status, last_activity_at);
--bun:split
CREATE INDEX carts_customer_idx ON carts (customer_id);
--bun:split
CREATE INDEX carts_cart_token_idx ON carts (source, cart_token);
--bun:split
-- The platform updated time of the last customer payload applied, so an
-- older delivery never overwrites a newer one.
ALTER TABLE customers ADD COLUMN platform_updated_at TIMESTAMP;
