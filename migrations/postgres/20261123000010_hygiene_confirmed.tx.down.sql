ALTER TABLE customers DROP COLUMN hygiene_confirmed_hash;
