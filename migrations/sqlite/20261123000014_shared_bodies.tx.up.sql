-- Shared bodies: a campaign batch renders its template once per locale with
-- placeholders where the recipient facts go, and stores it here once. Each
-- message row of the batch points at it (body_id) and keeps only its own
-- facts (recipient_vars: customer id, first and last name; the address and
-- the unsubscribe link are columns already). Reading a message puts the
-- two together, so the outbox still shows each message as it was sent.
CREATE TABLE message_bodies (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    subject     TEXT NOT NULL,
    html        TEXT NOT NULL,
    text        TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
--bun:split
ALTER TABLE messages ADD COLUMN body_id BIGINT;
--bun:split
ALTER TABLE messages ADD COLUMN recipient_vars TEXT;
--bun:split
-- The pressure window reads a customer by messages_customer_idx (customer_id, id):
-- a customer has few messages, so the second index on the same customer was
-- only a cost on every write.
DROP INDEX messages_customer_created_idx;
--bun:split
-- Only messages waiting or in flight are looked for by the delivery worker.
DROP INDEX messages_due_idx;
--bun:split
CREATE INDEX messages_due_idx ON messages (next_attempt_at) WHERE state IN ('queued', 'sending');
--bun:split
-- A message has no provider id until it is sent: rows waiting for one stay
-- out of the index.
DROP INDEX messages_provider_message_idx;
--bun:split
CREATE INDEX messages_provider_message_idx ON messages (provider_message_id) WHERE provider_message_id IS NOT NULL;
