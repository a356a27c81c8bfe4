DROP INDEX message_events_customer_kind_idx;
--bun:split
ALTER TABLE orders DROP COLUMN attributed_at;
--bun:split
ALTER TABLE orders DROP COLUMN attribution;
--bun:split
ALTER TABLE orders DROP COLUMN attributed_message_id;
--bun:split
DROP TABLE kpi_hourly_revenue;
--bun:split
DROP TABLE kpi_hourly;
--bun:split
ALTER TABLE messages DROP COLUMN kpi_flags;
--bun:split
ALTER TABLE messages DROP COLUMN first_click_at;
--bun:split
ALTER TABLE messages DROP COLUMN first_open_at;
