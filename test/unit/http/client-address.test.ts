import { describe, expect, test } from "bun:test";
import { createClientAddress } from "../../../src/http/client-address.ts";
import { addressKey } from "../../../src/ingest/admission.ts";

describe("client address", () => {
  test("without trusted proxies: the socket's peer, whatever X-Forwarded-For says", () => {
    const of = createClientAddress([]);
    expect(of("203.0.113.5", "198.51.100.1")).toBe("203.0.113.5");
    expect(of("::ffff:203.0.113.5", null)).toBe("203.0.113.5");
    expect(of(null, "198.51.100.1")).toBe("");
  });

  test("behind trusted proxies: the right-most entry that is not one of them", () => {
    const of = createClientAddress(["10.0.0.0/8", "::1", "192.0.2.1"]);
    expect(of("10.1.2.3", "198.51.100.1")).toBe("198.51.100.1");
    expect(of("::ffff:10.1.2.3", "6.6.6.6, 198.51.100.1, 192.0.2.1")).toBe("198.51.100.1");
    expect(of("::1", "2001:db8::1")).toBe("2001:db8::1");
    expect(of("10.1.2.3", "10.9.9.9")).toBe("10.1.2.3"); // all inside: the proxy itself
    expect(of("10.1.2.3", null)).toBe("10.1.2.3");
    expect(of("10.1.2.3", "198.51.100.1, not-an-address")).toBe("10.1.2.3");
    // An untrusted peer's header is its own words.
    expect(of("203.0.113.5", "198.51.100.1")).toBe("203.0.113.5");
  });

  test("the address limit holds per IPv4 address and per IPv6 /64", () => {
    expect(addressKey("203.0.113.5")).toBe("203.0.113.5");
    expect(addressKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:db8:1:2::9")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(addressKey("")).toBe("");
  });
});
