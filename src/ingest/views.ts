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
      const unknown = await catalog.unknown(events.map((e) => e.product_id));
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
