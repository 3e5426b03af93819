import { connect as tcpConnect } from "node:net";

// A topic's id (KIP-516), which changes when the topic is deleted and created again, or when Kafka's data is
// wiped: the one sure sign that stored offsets belong to another log. kafkajs speaks Metadata versions that
// predate topic ids and librdkafka's binding does not expose them, so this sends one Metadata v12 request
// (Kafka 2.8+) itself. Flexible-version encoding throughout: compact strings/arrays, tagged fields.

const METADATA = 3;
const VERSION = 12;

function uvarint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

export function encodeMetadataRequest(topic: string, correlationId: number, clientId: string): Buffer {
  const name = Buffer.from(topic);
  const client = Buffer.from(clientId);
  const body = Buffer.concat([
    // header v2: api key, version, correlation id, client id (int16-length string), no tagged fields
    Buffer.from([0, METADATA, 0, VERSION]),
    Buffer.alloc(4), // correlation id, written below
    Buffer.from([client.length >> 8, client.length & 0xff]),
    client,
    Buffer.from([0]),
    // topics: one entry { topic_id: zero uuid, name, no tags }
    Buffer.from(uvarint(2)),
    Buffer.alloc(16),
    Buffer.from(uvarint(name.length + 1)),
    name,
    Buffer.from([0]),
    // allow_auto_topic_creation=false, include_topic_authorized_operations=false, no tags
    Buffer.from([0, 0, 0]),
  ]);
  body.writeInt32BE(correlationId, 4);
  const frame = Buffer.alloc(4 + body.length);
  frame.writeInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

class Reader {
  pos = 0;
  constructor(private readonly b: Buffer) {}
  int8() {
    return this.b.readInt8(this.pos++);
  }
  int16() {
    const v = this.b.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32() {
    const v = this.b.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  uvarint() {
    let n = 0;
    let shift = 0;
    for (;;) {
      const byte = this.b[this.pos++]!;
      n |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return n >>> 0;
      shift += 7;
    }
  }
  compactString(): string | null {
    const len = this.uvarint() - 1;
    if (len < 0) return null;
    const s = this.b.toString("utf8", this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
  uuid(): string {
    const h = this.b.toString("hex", this.pos, this.pos + 16);
    this.pos += 16;
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  tags() {
    for (let n = this.uvarint(); n > 0; n--) {
      this.uvarint();
      this.pos += this.uvarint();
    }
  }
  array(each: () => void) {
    for (let n = this.uvarint() - 1; n > 0; n--) each();
  }
}

export interface TopicIdentity {
  clusterId: string | null;
  /** null when the topic does not exist. */
  topicId: string | null;
}

/** Parses a Metadata v12 response body (after the size prefix). */
export function decodeMetadataResponse(body: Buffer, topic: string): TopicIdentity {
  const r = new Reader(body);
  r.int32(); // correlation id
  r.tags();
  r.int32(); // throttle
  r.array(() => {
    r.int32();
    r.compactString();
    r.int32();
    r.compactString();
    r.tags();
  });
  const clusterId = r.compactString();
  r.int32(); // controller
  let topicId: string | null = null;
  r.array(() => {
    const error = r.int16();
    const name = r.compactString();
    const id = r.uuid();
    r.int8(); // is_internal
    r.array(() => {
      r.int16();
      r.int32();
      r.int32();
      r.int32();
      r.array(() => r.int32());
      r.array(() => r.int32());
      r.array(() => r.int32());
      r.tags();
    });
    r.int32(); // authorized operations
    r.tags();
    if (name === topic && error === 0) topicId = id;
  });
  return { clusterId, topicId };
}

/** Asks the first broker that answers; rejects when none does within `timeoutMs`. */
export async function fetchTopicIdentity(brokers: readonly string[], topic: string, timeoutMs = 3000): Promise<TopicIdentity> {
  let last: unknown;
  for (const broker of brokers) {
    try {
      return await askOne(broker, topic, timeoutMs);
    } catch (err) {
      last = err;
    }
  }
  throw new Error(`no broker answered a metadata request for ${topic}`, { cause: last });
}

function askOne(broker: string, topic: string, timeoutMs: number): Promise<TopicIdentity> {
  const i = broker.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: broker.slice(0, i), port: Number(broker.slice(i + 1)) });
    let data = Buffer.alloc(0);
    const fail = (err: unknown) => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`metadata request to ${broker} timed out`)));
    socket.once("error", fail);
    socket.once("connect", () => socket.write(encodeMetadataRequest(topic, 1, "product-views-topic-id")));
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (data.length < 4 || data.length < 4 + data.readInt32BE(0)) return;
      socket.destroy();
      try {
        resolve(decodeMetadataResponse(data.subarray(4, 4 + data.readInt32BE(0)), topic));
      } catch (err) {
        reject(err);
      }
    });
  });
}
