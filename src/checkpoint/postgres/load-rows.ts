import type { TextRow } from "../../db/text-rows-query.js";
import { ThreadlineError } from "../../errors.js";

/**
 * One row of a load query as Postgres sends it, each column's text in select order (see
 * `Statements.loadQuery`; decision H47): kind, thread_id, checkpoint_ns, c1..c6, n, txt, b64. The
 * kinds share the positional columns c1..c6 so that one UNION ALL returns them all; kind and n
 * are integers in text. Only {@link parseLoadRow} reads these columns; everything else works
 * with {@link LoadedRow}.
 */
export type RawLoadRow = TextRow;

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
  const threadId = row[1] ?? "";
  const ns = row[2] ?? "";
  const c1 = row[3] ?? "";
  switch (row[0]) {
    case "0":
      return {
        kind: "checkpoint",
        threadId,
        ns,
        id: c1,
        parentId: row[4] ?? null,
        checkpoint: row[5] ?? "{}",
        metadata: row[6] ?? "{}",
      };
    case "1":
      return {
        kind: "blob",
        threadId,
        ns,
        channel: c1,
        version: row[4] ?? "",
        type: row[5] ?? "empty",
        base: row[6] ?? null,
        root: row[7] ?? null,
        xmin: row[8] ?? null,
        txt: row[10] ?? null,
        b64: row[11] ?? null,
      };
    case "2": {
      const idx = row[9];
      return {
        kind: "write",
        threadId,
        ns,
        checkpointId: c1,
        taskId: row[4] ?? "",
        channel: row[5] ?? "",
        type: row[6] ?? "json",
        taskPath: row[7] ?? "",
        idx: idx == null ? 0 : Number(idx),
        txt: row[10] ?? null,
        b64: row[11] ?? null,
      };
    }
    case "3":
      return { kind: "held", threadId, ns, channel: c1, version: row[4] ?? "" };
    default:
      throw new ThreadlineError(
        "DATA_CORRUPT",
        `load query returned a row of kind ${String(row[0])}`,
      );
  }
}
