import { BlockList, isIP } from "node:net";

// The address a view is attributed to. The socket's peer, unless that peer is a proxy the operator named in
// TRUSTED_PROXIES: then the right-most X-Forwarded-For entry that is not itself a trusted proxy. Entries left of it
// were written by whoever sent the request and prove nothing; an untrusted peer's header is ignored whole.

export type ClientAddress = (peer: string | null, forwardedFor: string | null) => string;

/** IPv4 peers arrive as IPv4-mapped IPv6 ("::ffff:10.0.0.1") on a dual-stack socket: one spelling each. */
function canonical(address: string): string {
  const a = address.trim().toLowerCase();
  return a.startsWith("::ffff:") && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}

function blockList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits] = entry.split("/") as [string, string | undefined];
    const type = isIP(address) === 4 ? "ipv4" : "ipv6";
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return list;
}

export function createClientAddress(trustedProxies: readonly string[]): ClientAddress {
  if (trustedProxies.length === 0) return (peer) => (peer === null ? "" : canonical(peer));
  const trusted = blockList(trustedProxies);
  const isTrusted = (a: string) => {
    const family = isIP(a);
    return family !== 0 && trusted.check(a, family === 4 ? "ipv4" : "ipv6");
  };
  return (peer, forwardedFor) => {
    if (peer === null) return "";
    const direct = canonical(peer);
    if (forwardedFor === null || !isTrusted(direct)) return direct;
    const hops = forwardedFor.split(",");
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = canonical(hops[i]!);
      // A proxy that wrote garbage: the last address it vouched for is the best there is.
      if (isIP(hop) === 0) return direct;
      if (!isTrusted(hop)) return hop;
    }
    return direct; // every hop a trusted proxy: the request started inside
  };
}
