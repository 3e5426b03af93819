// How long an idle keep-alive connection stays open. Bun (uSockets) sweeps idle connections on a 4-second timer:
// with idleTimeout T, one is closed after between ceil(T/4)*4 - 4 and ceil(T/4)*4 idle seconds (bench/RESULTS.md,
// the vegeta run). A client going by the configured timeout reused
// connections the server was closing, and a POST sent on one ends in EOF: its sender cannot know if it counted.
// So the server's timer runs one period and a second longer than HTTP_IDLE_TIMEOUT_S, which is then the least
// a connection is kept, and every answer says so (Keep-Alive: timeout=N), for clients that close idle ones first.

const SWEEP_S = 4;

/** Bun's idleTimeout for a configured least idle time (HTTP_IDLE_TIMEOUT_S): closes after idleS + 1 to + 9 s. */
export const serverIdleTimeout = (idleS: number) => idleS + SWEEP_S + 1;

/** The highest HTTP_IDLE_TIMEOUT_S: Bun takes an idleTimeout of at most 255 s. */
export const MAX_IDLE_S = 255 - SWEEP_S - 1;

/** The Keep-Alive header every answer carries. */
export const keepAliveHeader = (idleS: number) => ({ "keep-alive": `timeout=${idleS}` }) as const;
