DROP INDEX messages_provider_message_idx;
--bun:split
CREATE INDEX messages_provider_message_idx ON messages (provider_message_id);
--bun:split
DROP INDEX messages_due_idx;
--bun:split
CREATE INDEX messages_due_idx ON messages (state, next_attempt_at);
--bun:split
CREATE INDEX messages_customer_created_idx ON messages (customer_id, created_at);
--bun:split
ALTER TABLE messages DROP COLUMN recipient_vars;
--bun:split
ALTER TABLE messages DROP COLUMN body_id;
--bun:split
DROP TABLE message_bodies;
