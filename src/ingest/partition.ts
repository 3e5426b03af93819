// librdkafka's "consistent_random" partitioner (pinned in the producer's configuration): CRC-32 of the key
// modulo the partition count. Computing it here lets a lane batch hold at most one message per partition,
// which is what makes delivery reports (they name a partition, not a message) attributable to one message.
export function partitionOf(key: string, partitions: number): number {
  return Bun.hash.crc32(key) % partitions;
}
