// KAFKA_PARTITIONER=product: a request goes to the partition of its first product, CRC-32 of the id modulo the
// partition count (what librdkafka's "consistent_random" partitioner would pick for that key). Computed here
// because each message names its partition: a lane batch then holds at most one message per partition.
export function partitionOf(key: string, partitions: number): number {
  return Bun.hash.crc32(key) % partitions;
}
