-- List hygiene: the verdict on each address (NULL until checked) and, for a
-- suspected typo, the suggested address.
ALTER TABLE customers ADD COLUMN hygiene_status TEXT;
--bun:split
ALTER TABLE customers ADD COLUMN hygiene_suggestion TEXT;
--bun:split
CREATE INDEX customers_hygiene_status_idx ON customers (hygiene_status);
--bun:split
-- Loyalty state on the customer, so segments filter on plain columns:
-- the points balance, the current tier and since when it is held.
ALTER TABLE customers ADD COLUMN loyalty_points BIGINT NOT NULL DEFAULT 0;
--bun:split
ALTER TABLE customers ADD COLUMN loyalty_tier TEXT;
--bun:split
ALTER TABLE customers ADD COLUMN loyalty_tier_since TIMESTAMP;
--bun:split
-- The points ledger: every change of balance with its cause. An order holds
-- as many points as its paid, unrefunded amount earns; each order event
-- writes only the difference, so a redelivery writes nothing.
CREATE TABLE loyalty_ledger (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id      BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    delta            BIGINT NOT NULL,
    balance          BIGINT NOT NULL,
    kind             TEXT NOT NULL,
    order_id         BIGINT REFERENCES orders (id) ON DELETE SET NULL,
    note             TEXT,
    idempotency_key  TEXT UNIQUE,
    created_at       TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX loyalty_ledger_customer_idx ON loyalty_ledger (customer_id, id);
--bun:split
CREATE INDEX loyalty_ledger_order_idx ON loyalty_ledger (order_id);
--bun:split
-- Referral codes: one stable, random code per customer.
CREATE TABLE referral_codes (
    customer_id  BIGINT PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    code         TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMP NOT NULL
);
--bun:split
-- Referrals: a referred customer is linked to one referrer, once.
CREATE TABLE referrals (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    referrer_id      BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    referred_id      BIGINT NOT NULL UNIQUE REFERENCES customers (id) ON DELETE CASCADE,
    code             TEXT NOT NULL,
    channel          TEXT NOT NULL,
    redeemed_at      TIMESTAMP NOT NULL,
    rewarded_at      TIMESTAMP,
    reward_order_id  BIGINT REFERENCES orders (id) ON DELETE SET NULL,
    reward_points    BIGINT NOT NULL DEFAULT 0
);
--bun:split
CREATE INDEX referrals_referrer_idx ON referrals (referrer_id);
--bun:split
-- Erasures: what was erased, when and why. The address is kept only as the
-- hash the suppression list uses.
CREATE TABLE privacy_erasures (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id   BIGINT NOT NULL,
    address_hash  TEXT,
    reason        TEXT NOT NULL,
    counts        TEXT NOT NULL DEFAULT '{}',
    erased_at     TIMESTAMP NOT NULL
);
--bun:split
CREATE INDEX privacy_erasures_customer_idx ON privacy_erasures (customer_id);
