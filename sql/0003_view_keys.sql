-- Idempotency keys the worker counted (worker/writer.ts writes them in the statement that counts their views,
-- so a key is on record exactly when its views are). Digests, not the keys: 16 bytes each whatever the client sent.
CREATE TABLE IF NOT EXISTS view_keys (
  -- MD5 of the client's Idempotency-Key.
  key uuid PRIMARY KEY,
  -- MD5 of the request's views: a repeat with another body is not counted, and is counted as a mismatch.
  fingerprint uuid NOT NULL,
  -- Until then a repeat is not counted; after it the key is new again (and the row may be deleted).
  expires_at timestamptz NOT NULL
);
