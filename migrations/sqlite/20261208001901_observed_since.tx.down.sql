UPDATE segments SET rule = 'consent == "subscribed" && created_at < now - days(90) && (last_open_at == null || last_open_at < now - days(90)) && (last_order_at == null || last_order_at < now - days(180))'
WHERE name = 'sunset' AND rule = 'consent == "subscribed" && observed_since < now - days(90) && (last_open_at == null || last_open_at < now - days(90)) && (last_order_at == null || last_order_at < now - days(180))';
--bun:split
ALTER TABLE customers DROP COLUMN observed_since;
