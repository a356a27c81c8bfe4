ALTER TABLE campaigns DROP COLUMN written_count;
--bun:split
DROP INDEX pressure_decisions_deferred_idx;
--bun:split
CREATE INDEX pressure_decisions_program_idx ON pressure_decisions (program, at);
--bun:split
CREATE INDEX pressure_decisions_key_idx ON pressure_decisions (message_key, decision);
--bun:split
-- The rows of a call take back what was recorded on the call.
UPDATE messages SET provider_message_id = b.provider_message_id, sent_at = b.sent_at
FROM message_bodies AS b WHERE messages.body_id = b.id AND b.state = 'sent' AND messages.state = 'sent'
AND messages.provider_message_id IS NULL;
--bun:split
UPDATE messages SET state = 'sending', sent_at = NULL, locked_by = b.locked_by, locked_until = b.locked_until
FROM message_bodies AS b WHERE messages.body_id = b.id AND b.state = 'sending' AND messages.state = 'sent';
--bun:split
DROP INDEX messages_recipient_idx;
--bun:split
CREATE INDEX messages_recipient_idx ON messages (recipient, id);
--bun:split
DROP INDEX message_bodies_provider_message_idx;
--bun:split
DROP INDEX message_bodies_pending_idx;
--bun:split
ALTER TABLE message_bodies DROP COLUMN message_ids;
--bun:split
ALTER TABLE message_bodies DROP COLUMN locked_until;
--bun:split
ALTER TABLE message_bodies DROP COLUMN locked_by;
--bun:split
ALTER TABLE message_bodies DROP COLUMN sent_at;
--bun:split
ALTER TABLE message_bodies DROP COLUMN provider_message_id;
--bun:split
ALTER TABLE message_bodies DROP COLUMN state;
