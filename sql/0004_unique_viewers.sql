-- Unique viewers per product: a HyperLogLog sketch of the public viewers (postgresql-hll, Debian's
-- postgresql-15-hll), written by the worker's flush statement with the counts, and its estimate beside view_count.
-- log2m 13: 8 192 registers, a standard error of 1.04 / sqrt(8192) = 1.15 %; exact (an explicit list) while small.
-- The extension lives in public whatever the search_path, so a migration run in another schema cannot own it.
CREATE EXTENSION IF NOT EXISTS hll SCHEMA public;
ALTER TABLE products
  ADD COLUMN IF NOT EXISTS unique_viewers bigint NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS viewers public.hll;
