import { guard, type Database } from "../db/client.ts";
import { notifyChanged } from "../db/flush-channel.ts";
import type { Gate } from "../db/gate.ts";
import { seriesOf } from "../db/history.ts";
import { createProduct, getProduct } from "../db/products.ts";
import { zeroFilled } from "../domain/history.ts";
import type { ProductService } from "../http/product-routes.ts";
import type { Catalog } from "../ingest/catalog.ts";
import type { Logger } from "../log.ts";
import type { startRankings } from "../ranking/rankings.ts";

/** The product routes' service: creation (the catalog and the rankings told), reads by id, rankings, series. */
export function productService(
  database: Database,
  catalog: Catalog,
  rankings: Awaited<ReturnType<typeof startRankings>>,
  reads: Gate,
  log: Logger,
): ProductService {
  return {
    async create(p) {
      const product = await guard(createProduct(database.db, p));
      catalog.remember(product.id);
      // Every API process ranks it through the NOTIFY; this one at once. Best effort: a lost NOTIFY is caught by the
      // next full read (TOP_FULL_REFRESH_MS).
      if (product.view_count > 0) {
        rankings.top.invalidate([product.id]);
        await guard(notifyChanged(database.sql, [product])).catch((err) =>
          log.warn({ err }, "could not announce a new product to the top-N"),
        );
      }
      return product;
    },
    get: (id) => reads(() => guard(getProduct(database.db, id))),
    topJson: rankings.topJson,
    topStream: rankings.topStream,
    series: (id, q) =>
      reads(async () => {
        const product = await guard(getProduct(database.db, id));
        if (!product) return null;
        const points = zeroFilled(await guard(seriesOf(database.db, id, q.bucket, q.from, q.to)), q);
        const total = points.reduce((n, p) => n + p.views, 0);
        return { product_id: id, bucket: q.bucket, from: points[0]!.t, to: points[points.length - 1]!.t, total, points };
      }),
  };
}
