DROP TABLE mail_poll_state;
--bun:split
DROP TABLE rate_limits;
--bun:split
DROP TABLE mail_templates;
--bun:split
DROP TABLE mailgun_webhook_tokens;
--bun:split
DROP TABLE suppressions;
--bun:split
DROP TABLE message_events;
--bun:split
DROP TABLE messages;
