// The part of kafkajs's internal request queue that kafkajs-request-queue.test.ts drives (kafkajs ships no types for it).
declare module "kafkajs/src/network/requestQueue/index.js" {
  export default class RequestQueue {
    constructor(opts: {
      maxInFlightRequests: number | null;
      requestTimeout: number;
      enforceRequestTimeout: boolean;
      clientId: string;
      broker: string;
      logger: Record<"debug" | "info" | "warn" | "error", (...args: unknown[]) => void>;
    });
    throttledUntil: number;
    throttleCheckTimeoutId: unknown;
    push(request: {
      entry: { correlationId: number; apiKey: number; apiName: string; apiVersion: number; resolve(): void; reject(): void };
      expectResponse: boolean;
      requestTimeout: number;
      sendRequest(): void;
    }): void;
    maybeThrottle(ms: number): void;
    checkPendingRequests(): void;
    fulfillRequest(response: { correlationId: number; payload: Buffer; size: number }): void;
  }
}
