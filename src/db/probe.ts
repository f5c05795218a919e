import pg from "pg";
import { quoteSchema } from "./identifier.js";

/** Bound on the probe's statement when the pool has no `query_timeout` of its own, in ms. */
const PROBE_QUERY_TIMEOUT_MS = 10_000;
/** How long closing the probe's connection may take before its socket is destroyed, in ms. */
const END_TIMEOUT_MS = 2_000;

/**
 * Checks that Postgres answers, on a connection of its own opened with the pool's settings
 * (address, credentials, `application_name`, connect timeout), never on a pooled one: after a
 * network fault the pool's idle connections may be black-holed (they look open and never answer),
 * and a probe that borrowed one would report an outage long after the network healed.
 *
 * Runs a primary-key probe of `<schema>.checkpoints`, so a dropped schema fails the probe too.
 * The connection is closed afterwards; on failure its socket is destroyed rather than ended
 * politely, since a polite end waits for a peer that may never answer.
 *
 * @throws the connection's or the statement's error (classify it with `isConnectionError`).
 */
export async function probeFreshConnection(pool: pg.Pool, schema = "public"): Promise<void> {
  const options = pool.options as pg.ClientConfig;
  const client = new pg.Client({
    ...options,
    query_timeout: options.query_timeout ?? PROBE_QUERY_TIMEOUT_MS,
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query(
      `SELECT 1 FROM ${quoteSchema(schema)}.checkpoints WHERE thread_id = $1 LIMIT 1`,
      ["__threadline_probe__"],
    );
  } catch (err) {
    destroy(client);
    throw err;
  }
  // A polite end, but bounded: the network may fail again right after the answer.
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([
    client.end().then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), END_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  if (!ended) destroy(client);
}

function destroy(client: pg.Client): void {
  const stream = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection
    ?.stream;
  stream?.destroy();
}
