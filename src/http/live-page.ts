import { readFileSync } from "node:fs";

/** GET /: the live top 10, fed by GET /api/v1/products/top/stream (read once at start, served as is). */
export const LIVE_PAGE = readFileSync(new URL("./live.html", import.meta.url), "utf8");
