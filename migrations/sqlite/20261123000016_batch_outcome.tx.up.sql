-- Batch outcome: a campaign batch call is one row of message_bodies, and the
-- provider answer is recorded there once, not on each of its message rows.
-- The rows of a call are written as sent; while the call has state sending
-- they read as sending, and once it is sent they read its provider id and
-- time. A call still sending when its lease runs out (its sender died) hands
-- its rows back to the delivery worker, which asks the provider before
-- sending any again; so does a call the provider refused (settled: the rows
-- then hold their own state). message_ids lists the rows of the call (JSON).
ALTER TABLE message_bodies ADD COLUMN state TEXT;
--bun:split
ALTER TABLE message_bodies ADD COLUMN provider_message_id TEXT;
--bun:split
ALTER TABLE message_bodies ADD COLUMN sent_at TIMESTAMP;
--bun:split
ALTER TABLE message_bodies ADD COLUMN locked_by TEXT;
--bun:split
ALTER TABLE message_bodies ADD COLUMN locked_until TIMESTAMP;
--bun:split
ALTER TABLE message_bodies ADD COLUMN message_ids TEXT;
--bun:split
CREATE INDEX message_bodies_pending_idx ON message_bodies (locked_until) WHERE state = 'sending';
--bun:split
CREATE INDEX message_bodies_provider_message_idx ON message_bodies (provider_message_id) WHERE provider_message_id IS NOT NULL;
--bun:split
-- The address index serves only the erasure of messages that have no
-- customer id (written before the customer was known, or whose customer
-- was deleted); the others are found by customer.
DROP INDEX messages_recipient_idx;
--bun:split
CREATE INDEX messages_recipient_idx ON messages (recipient, id) WHERE customer_id IS NULL;
--bun:split
-- Pressure decisions are looked up by message key only for deferrals (when
-- was this message first deferred); the program index served no query.
-- Every campaign recipient writes a decision, most of them sent: those now
-- cost the primary key and the customer index only.
DROP INDEX pressure_decisions_key_idx;
--bun:split
DROP INDEX pressure_decisions_program_idx;
--bun:split
CREATE INDEX pressure_decisions_deferred_idx ON pressure_decisions (message_key, at) WHERE decision = 'defer';
--bun:split
-- A campaign recipient whose message is written leaves campaign_recipients
-- (deleted in the transaction that writes the message) and is counted here:
-- rows of the table are the recipients still to send and the skipped ones.
-- Rows in state written are those of campaigns sent before this migration.
ALTER TABLE campaigns ADD COLUMN written_count INTEGER NOT NULL DEFAULT 0;
