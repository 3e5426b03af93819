-- products: one row per product; view_count only ever grows through the worker's batched UPDATE.
-- fillfactor leaves room on each page so the count updates stay HOT (no index touches view_count).
CREATE TABLE IF NOT EXISTS products (
  id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text        NOT NULL,
  description text        NOT NULL DEFAULT '',
  view_count  bigint      NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT products_view_count_check CHECK (view_count >= 0)
) WITH (fillfactor = 70);

-- view_offsets: next offset to apply per topic partition, committed with the counts it covers.
CREATE TABLE IF NOT EXISTS view_offsets (
  topic       text        NOT NULL,
  partition   integer     NOT NULL,
  next_offset bigint      NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, partition)
);
