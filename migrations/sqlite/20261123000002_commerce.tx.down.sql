DROP TABLE carts;
--bun:split
DROP TABLE orders;
--bun:split
DROP TABLE inbound_events;
--bun:split
ALTER TABLE customers DROP COLUMN platform_updated_at;

