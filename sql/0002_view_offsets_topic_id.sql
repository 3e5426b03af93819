-- The Kafka topic id (KIP-516) the stored offsets belong to. A topic deleted and created again, or a wiped
-- Kafka, has a new id: its offsets restart at 0 and must not be read against the old next_offset.
-- NULL on rows written before this column existed; the worker's next flush records the id.
ALTER TABLE view_offsets ADD COLUMN IF NOT EXISTS topic_id uuid;
