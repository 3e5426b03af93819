import type { Catalog } from "./catalog.ts";
import type { ViewProducer } from "./producer.ts";
import type { ViewEvent } from "../domain/view.ts";
import { AppError } from "../errors.ts";

export interface ViewRecorder {
  /** Checks every product exists, then hands the events to Kafka; all or nothing. */
  record(events: readonly ViewEvent[]): Promise<void>;
}

export function createViewRecorder(catalog: Catalog, producer: ViewProducer): ViewRecorder {
  return {
    async record(events) {
      let unknown: string[];
      try {
        unknown = await catalog.unknown(events.map((e) => e.product_id));
      } catch (err) {
        // Refused before anything reached Kafka: every 503 of a view endpoint says whether it may be written.
        if (err instanceof AppError && err.code === "database_unavailable") {
          throw new AppError(err.code, err.message, { retryable: true, cause: err.cause, details: { ...err.details, written: "no" } });
        }
        throw err;
      }
      if (unknown.length > 0) {
        // No event is produced for a request that names an unknown product, not even for its known ones.
        throw new AppError(
          "product_not_found",
          unknown.length === 1 ? `product ${unknown[0]} not found` : `${unknown.length} products not found`,
          { details: { unknown_ids: unknown } },
        );
      }
      await producer.publish(events);
    },
  };
}
