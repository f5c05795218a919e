import type { FormatAdapter } from "../types.js";
import { checkpointRedisAdapter, howtoColonAdapter, howtoDollarAdapter } from "./hashes.js";
import {
  jsAdapter,
  jsShallowAdapter,
  python00Adapter,
  pythonAdapter,
  pythonShallowAdapter,
} from "./official.js";

/**
 * Every reader, in detection order: the first adapter whose `detect` accepts a record decodes
 * it (more specific layouts first: Python 0.0.x before >= 0.1, shallow JS before full JS).
 */
export const ADAPTERS: readonly FormatAdapter[] = [
  python00Adapter,
  pythonAdapter,
  pythonShallowAdapter,
  jsShallowAdapter,
  jsAdapter,
  howtoColonAdapter,
  howtoDollarAdapter,
  checkpointRedisAdapter,
];

/** Key prefixes worth fetching; anything else in the keyspace is counted, never read. */
export const KNOWN_PREFIXES: readonly string[] = [...new Set(ADAPTERS.flatMap((a) => a.prefixes))];

/** Index structures of the savers, recognised and skipped (their contents are derivable). */
export const AUXILIARY_PREFIXES: readonly string[] = [
  "write_keys_zset:",
  "write_registry:",
  "checkpoint_latest:",
];
