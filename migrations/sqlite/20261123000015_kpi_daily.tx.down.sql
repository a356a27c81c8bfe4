DROP INDEX enrollments_entered_idx;
--bun:split
DROP INDEX orders_attributed_message_idx;
--bun:split
ALTER TABLE orders DROP COLUMN attributed_goal;
--bun:split
DROP TABLE kpi_daily_revenue;
--bun:split
DROP TABLE kpi_daily;
