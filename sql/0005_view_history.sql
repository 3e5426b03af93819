-- History: each product's views by the minute the API accepted them, and by the hour. The worker's flush adds to
-- view_minutes in the statement that counts the views (so history is exactly once with the counts); a fold
-- (db/history.ts) moves what the minutes gained since into view_hours. Both are partitioned by time so retention
-- drops whole partitions (db/history-partitions.ts creates and drops them: daily for minutes, monthly for hours).
CREATE TABLE IF NOT EXISTS view_minutes (
  product_id uuid        NOT NULL,
  minute     timestamptz NOT NULL,
  views      bigint      NOT NULL,
  -- How much of `views` is in view_hours already: the fold adds views - folded, then sets folded = views.
  folded     bigint      NOT NULL DEFAULT 0,
  PRIMARY KEY (product_id, minute)
) PARTITION BY RANGE (minute);
-- Rows arrive in time order: a block-range index finds a minute's rows for the fold and the 1 h window cheaply.
CREATE INDEX IF NOT EXISTS view_minutes_minute ON view_minutes USING brin (minute);

CREATE TABLE IF NOT EXISTS view_hours (
  product_id uuid        NOT NULL,
  hour       timestamptz NOT NULL,
  views      bigint      NOT NULL,
  PRIMARY KEY (product_id, hour)
) PARTITION BY RANGE (hour);
CREATE INDEX IF NOT EXISTS view_hours_hour ON view_hours USING brin (hour);

-- Minutes with views not yet folded into hours. Every flush that adds to a minute raises its seq; the fold deletes
-- a mark only if its seq did not move while it folded, so a minute written meanwhile is folded again.
CREATE TABLE IF NOT EXISTS view_minute_marks (
  minute timestamptz PRIMARY KEY,
  seq    bigint      NOT NULL
);

-- Views counted before history existed are put in the hour this migration ran, so each product's series sums to
-- its view_count. The partition is named as db/history-partitions.ts names them.
DO $$
DECLARE
  month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
  part  text := 'view_hours_p' || to_char(month, 'YYYYMM');
BEGIN
  EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF view_hours FOR VALUES FROM (%L) TO (%L)',
    part, month AT TIME ZONE 'UTC', (month + interval '1 month') AT TIME ZONE 'UTC');
  INSERT INTO view_hours (product_id, hour, views)
    SELECT id, date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', view_count FROM products WHERE view_count > 0;
END $$;
