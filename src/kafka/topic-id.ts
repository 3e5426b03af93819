import { isIP, type Socket, connect as tcpConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { KafkaSecurity } from "../config-security.ts";
import { saslExchange } from "./sasl.ts";
import { tlsOptions } from "./security.ts";

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
  bytes(n: number): Buffer {
    const b = this.b.subarray(this.pos, this.pos + Math.max(n, 0));
    this.pos += Math.max(n, 0);
    return b;
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
export async function fetchTopicIdentity(
  brokers: readonly string[],
  topic: string,
  security: KafkaSecurity = { protocol: "plaintext" },
  timeoutMs = 3000,
): Promise<TopicIdentity> {
  let last: unknown;
  for (const broker of brokers) {
    try {
      return await askOne(broker, topic, security, timeoutMs);
    } catch (err) {
      last = err;
    }
  }
  throw new Error(`no broker answered a metadata request for ${topic}`, { cause: last });
}

async function askOne(broker: string, topic: string, security: KafkaSecurity, timeoutMs: number): Promise<TopicIdentity> {
  const conn = await openConnection(broker, security, timeoutMs);
  try {
    if (security.sasl) await authenticate(conn, security.sasl);
    const response = await conn.request(encodeMetadataRequest(topic, conn.nextId(), CLIENT_ID));
    return decodeMetadataResponse(response, topic);
  } finally {
    conn.close();
  }
}

const CLIENT_ID = "product-views-topic-id";

interface Connection {
  nextId(): number;
  /** Sends one framed request; resolves with its response's body (after the size prefix). */
  request(frame: Buffer): Promise<Buffer>;
  close(): void;
}

/** A TCP or TLS connection to one broker, every wait bounded by `timeoutMs`. */
function openConnection(broker: string, security: KafkaSecurity, timeoutMs: number): Promise<Connection> {
  const i = broker.lastIndexOf(":");
  const host = broker.slice(0, i);
  const port = Number(broker.slice(i + 1));
  const tls = tlsOptions(security);
  return new Promise((resolve, reject) => {
    const socket: Socket = tls
      ? tlsConnect({ host, port, ...tls, ...(isIP(host) ? {} : { servername: host }) })
      : tcpConnect({ host, port });
    let data = Buffer.alloc(0);
    let waiting: { resolve(b: Buffer): void; reject(e: unknown): void } | null = null;
    let correlation = 0;
    const fail = (err: unknown) => {
      socket.destroy();
      reject(err);
      waiting?.reject(err);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`request to ${broker} timed out`)));
    socket.once("error", fail);
    socket.once(tls ? "secureConnect" : "connect", () =>
      resolve({
        nextId: () => ++correlation,
        request(frame) {
          return new Promise<Buffer>((res, rej) => {
            waiting = { resolve: res, reject: rej };
            socket.write(frame);
          });
        },
        close: () => socket.destroy(),
      }),
    );
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (data.length < 4 || data.length < 4 + data.readInt32BE(0)) return;
      const body = data.subarray(4, 4 + data.readInt32BE(0));
      data = data.subarray(4 + body.length);
      const w = waiting;
      waiting = null;
      w?.resolve(body);
    });
  });
}

/** A request of a non-flexible version: header v1 (api key, version, correlation id, client id), then the body. */
function frame(apiKey: number, version: number, correlationId: number, body: Buffer): Buffer {
  const client = Buffer.from(CLIENT_ID);
  const header = Buffer.alloc(10);
  header.writeInt16BE(apiKey, 0);
  header.writeInt16BE(version, 2);
  header.writeInt32BE(correlationId, 4);
  header.writeInt16BE(client.length, 8);
  const size = Buffer.alloc(4);
  size.writeInt32BE(header.length + client.length + body.length);
  return Buffer.concat([size, header, client, body]);
}

const SASL_HANDSHAKE = 17;
const SASL_AUTHENTICATE = 36;

/** SaslHandshake v1, then SaslAuthenticate v1 until the exchange ends (sasl.ts). */
async function authenticate(conn: Connection, sasl: NonNullable<KafkaSecurity["sasl"]>): Promise<void> {
  const mechanism = Buffer.from(sasl.mechanism);
  const len = Buffer.alloc(2);
  len.writeInt16BE(mechanism.length);
  const hs = await conn.request(frame(SASL_HANDSHAKE, 1, conn.nextId(), Buffer.concat([len, mechanism])));
  const hsError = hs.readInt16BE(4);
  if (hsError !== 0) throw new Error(`the broker does not take SASL ${sasl.mechanism} (error ${hsError})`);
  const exchange = saslExchange(sasl.mechanism, sasl.username, sasl.password);
  for (let out: Buffer | null = exchange.first(); out !== null; ) {
    const size = Buffer.alloc(4);
    size.writeInt32BE(out.length);
    const r = new Reader(await conn.request(frame(SASL_AUTHENTICATE, 1, conn.nextId(), Buffer.concat([size, out]))));
    r.int32(); // correlation id
    const error = r.int16();
    const messageLength = r.int16();
    const message = messageLength < 0 ? "" : r.bytes(messageLength).toString("utf8");
    if (error !== 0) throw new Error(`SASL ${sasl.mechanism} authentication failed: ${message || `error ${error}`}`);
    const answer = r.bytes(r.int32());
    out = exchange.next(answer);
  }
}
