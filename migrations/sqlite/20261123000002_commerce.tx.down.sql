DROP TABLE carts;
--bun:split
DROP TABLE orders;
--bun:split
DROP TABLE inbound_events;
