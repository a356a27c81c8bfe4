-- A subscriber who confirmed an address that looks like a typo: the hex
-- SHA-256 of the normalised address they confirmed. The confirmation holds
-- while the address is unchanged, so later checks do not flag it again.
ALTER TABLE customers ADD COLUMN hygiene_confirmed_hash TEXT;
