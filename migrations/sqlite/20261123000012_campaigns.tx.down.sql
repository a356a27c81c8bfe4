DROP TABLE campaign_recipients;
--bun:split
DROP TABLE campaigns;
--bun:split
DROP INDEX messages_customer_created_idx;
--bun:split
DROP TABLE pressure_decisions;
