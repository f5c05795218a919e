import { ThreadlineError } from "../../errors.js";

/**
 * One row of a load query as Postgres returns it (see `Statements.loadQuery`): the kinds share
 * positional columns c1..c6 so that one UNION ALL returns them all. Only {@link parseLoadRow}
 * reads these columns; everything else works with {@link LoadedRow}.
 */
export interface RawLoadRow {
  kind: number;
  thread_id: string;
  checkpoint_ns: string;
  c1: string;
  c2: string | null;
  c3: string | null;
  c4: string | null;
  c5: string | null;
  c6: string | null;
  n: number | null;
  txt: string | null;
  b64: string | null;
}

/** A checkpoint row (kind 0). */
export interface CheckpointRow {
  kind: "checkpoint";
  threadId: string;
  ns: string;
  id: string;
  parentId: string | null;
  /** The checkpoint JSON without channel_values. */
  checkpoint: string;
  metadata: string;
}

/** A blob row (kind 1): a full value, a delta, or the official saver's "empty" marker. */
export interface BlobRow {
  kind: "blob";
  threadId: string;
  ns: string;
  channel: string;
  version: string;
  type: string;
  /** The version this delta extends; null for a full value. */
  base: string | null;
  /** The version of the full value the chain starts from; null for a full value. */
  root: string | null;
  /** Identity of the row version (xmin), compared with what this process holds. */
  xmin: string | null;
  txt: string | null;
  b64: string | null;
}

/** A pending write row (kind 2). */
export interface WriteRow {
  kind: "write";
  threadId: string;
  ns: string;
  checkpointId: string;
  taskId: string;
  channel: string;
  type: string;
  taskPath: string;
  idx: number;
  txt: string | null;
  b64: string | null;
}

/** A blob the caller said it holds, still the same row version (kind 3): no payload. */
export interface HeldRow {
  kind: "held";
  threadId: string;
  ns: string;
  channel: string;
  version: string;
}

/** One row of a load query, by kind. */
export type LoadedRow = CheckpointRow | BlobRow | WriteRow | HeldRow;

/** The single reader of the positional columns of a load query. */
export function parseLoadRow(row: RawLoadRow): LoadedRow {
  const threadId = row.thread_id;
  const ns = row.checkpoint_ns;
  switch (row.kind) {
    case 0:
      return {
        kind: "checkpoint",
        threadId,
        ns,
        id: row.c1,
        parentId: row.c2,
        checkpoint: row.c3 ?? "{}",
        metadata: row.c4 ?? "{}",
      };
    case 1:
      return {
        kind: "blob",
        threadId,
        ns,
        channel: row.c1,
        version: row.c2 ?? "",
        type: row.c3 ?? "empty",
        base: row.c4,
        root: row.c5,
        xmin: row.c6,
        txt: row.txt,
        b64: row.b64,
      };
    case 2:
      return {
        kind: "write",
        threadId,
        ns,
        checkpointId: row.c1,
        taskId: row.c2 ?? "",
        channel: row.c3 ?? "",
        type: row.c4 ?? "json",
        taskPath: row.c5 ?? "",
        idx: row.n ?? 0,
        txt: row.txt,
        b64: row.b64,
      };
    case 3:
      return { kind: "held", threadId, ns, channel: row.c1, version: row.c2 ?? "" };
    default:
      throw new ThreadlineError("DATA_CORRUPT", `load query returned a row of kind ${row.kind}`);
  }
}
