DROP TABLE privacy_erasures;
--bun:split
DROP TABLE referrals;
--bun:split
DROP TABLE referral_codes;
--bun:split
DROP TABLE loyalty_ledger;
--bun:split
DROP INDEX customers_hygiene_status_idx;
--bun:split
ALTER TABLE customers DROP COLUMN loyalty_tier_since;
--bun:split
ALTER TABLE customers DROP COLUMN loyalty_tier;
--bun:split
ALTER TABLE customers DROP COLUMN loyalty_points;
--bun:split
ALTER TABLE customers DROP COLUMN hygiene_suggestion;
--bun:split
ALTER TABLE customers DROP COLUMN hygiene_status;
