DROP TABLE api_keys;
--bun:split
DROP TABLE customer_events;
--bun:split
DROP TABLE customers;
