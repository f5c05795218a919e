import type { BaseCheckpointSaver, SerializerProtocol } from "@langchain/langgraph-checkpoint";
import type { ThreadRows } from "./serialize.js";

/** One difference between the source and what the checkpointer reads back. */
export interface VerifyMismatch {
  threadId: string;
  checkpointNs: string;
  checkpointId: string;
  problem: string;
}

const decoder = new TextDecoder();

/** A row's blob as bytes (serialized JSON is kept as its text until written). */
function bytesOf(blob: Uint8Array | string | null): Uint8Array {
  if (blob === null) return new Uint8Array();
  return typeof blob === "string" ? Buffer.from(blob, "utf8") : blob;
}

function sameVersions(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return (
    ka.length === kb.length && ka.every((k, i) => k === kb[i] && String(a[k]) === String(b[k]))
  );
}

/**
 * Reads one imported thread back through a checkpointer and compares it with the converted
 * source: every imported checkpoint exists, with the source's channel versions, the same
 * channel values (compared as the serializer's bytes, so message objects compare by content),
 * and at least the source's pending writes.
 */
export async function verifyThread(
  saver: BaseCheckpointSaver,
  serde: SerializerProtocol,
  rows: ThreadRows,
): Promise<VerifyMismatch[]> {
  const out: VerifyMismatch[] = [];
  const blobs = new Map(rows.blobs.map((b) => [`${b.ns}\u0000${b.channel}\u0000${b.version}`, b]));
  const writesPer = new Map<string, number>();
  for (const w of rows.writes) {
    const k = `${w.ns}\u0000${w.checkpointId}`;
    writesPer.set(k, (writesPer.get(k) ?? 0) + 1);
  }
  for (const cp of rows.checkpoints) {
    const miss = (problem: string) =>
      out.push({ threadId: rows.threadId, checkpointNs: cp.ns, checkpointId: cp.id, problem });
    const tuple = await saver.getTuple({
      configurable: { thread_id: rows.threadId, checkpoint_ns: cp.ns, checkpoint_id: cp.id },
    });
    if (!tuple) {
      miss("checkpoint missing");
      continue;
    }
    const expected = JSON.parse(cp.checkpoint) as { channel_versions: Record<string, number> };
    if (!sameVersions(expected.channel_versions, tuple.checkpoint.channel_versions)) {
      miss("channel versions differ");
    }
    for (const [channel, version] of Object.entries(expected.channel_versions)) {
      const blob = blobs.get(`${cp.ns}\u0000${channel}\u0000${version}`);
      const present = Object.prototype.hasOwnProperty.call(
        tuple.checkpoint.channel_values,
        channel,
      );
      if (!blob || blob.type === "empty") {
        if (present) miss(`channel ${channel} has a value the source does not`);
        continue;
      }
      if (!present) {
        miss(`channel ${channel} is missing`);
        continue;
      }
      const [, bytes] = await serde.dumpsTyped(tuple.checkpoint.channel_values[channel]);
      const got = typeof bytes === "string" ? bytes : decoder.decode(bytes);
      if (got !== decoder.decode(bytesOf(blob.blob))) miss(`channel ${channel} differs`);
    }
    const want = writesPer.get(`${cp.ns}\u0000${cp.id}`) ?? 0;
    const have = tuple.pendingWrites?.length ?? 0;
    if (have < want) miss(`${want} pending writes expected, ${have} found`);
  }
  return out;
}
