-- When Refrain started observing each customer (first webhook, sync,
-- subscription or import). Programs that delete profiles act only on
-- customers observed for at least their own inactivity window: a base just
-- imported has no open history, and no open in 90 days is true of all of it.
-- Customers already stored are observed from this migration on.
ALTER TABLE customers ADD COLUMN observed_since TIMESTAMP;
--bun:split
UPDATE customers SET observed_since = CURRENT_TIMESTAMP;
--bun:split
-- The seeded sunset segment counted its 3 months from the store sign-up
-- date; it now counts them from when Refrain started observing. A segment
-- changed by hand is left alone.
UPDATE segments SET rule = 'consent == "subscribed" && observed_since < now - days(90) && (last_open_at == null || last_open_at < now - days(90)) && (last_order_at == null || last_order_at < now - days(180))'
WHERE name = 'sunset' AND rule = 'consent == "subscribed" && created_at < now - days(90) && (last_open_at == null || last_open_at < now - days(90)) && (last_order_at == null || last_order_at < now - days(180))';
