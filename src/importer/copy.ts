import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";

/** Column types the importer loads with COPY, in PostgreSQL's binary COPY encoding. */
export type CopyColumn = "text" | "bytea" | "int4" | "jsonb";

/** A value of a column: strings for text and jsonb (JSON text), bytes for bytea. */
export type CopyValue = string | number | Uint8Array | null;

const SIGNATURE = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1");
/** Chunks handed to the socket: large enough to amortise writes, small enough to stream. */
const CHUNK_BYTES = 256 * 1024;

/**
 * Encodes rows in the binary COPY format (`COPY ... FROM STDIN (FORMAT binary)`): the
 * signature, then per row a field count and each field as a length-prefixed value, then -1.
 * Binary rather than text: bytea payloads go as they are instead of doubled into hex, and no
 * value needs escaping. Yields buffers of about {@link CHUNK_BYTES}. Fields are written straight
 * into the chunk (one allocation per chunk, not one per field: the per-field buffers were most of
 * the encoder's time and a good part of the import's garbage).
 */
export function* encodeBinaryCopy(
  columns: readonly CopyColumn[],
  rows: Iterable<readonly CopyValue[]>,
): Generator<Buffer> {
  let buf = Buffer.allocUnsafe(CHUNK_BYTES);
  let pos = 0;
  // Room for `n` more bytes: a full chunk is handed out first, an oversized field gets its own.
  const need = function* (n: number): Generator<Buffer, void> {
    if (pos + n <= buf.length) return;
    if (pos > 0) yield buf.subarray(0, pos);
    buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, n));
    pos = 0;
  };
  yield* need(SIGNATURE.length + 8);
  SIGNATURE.copy(buf, 0);
  buf.fill(0, SIGNATURE.length, SIGNATURE.length + 8); // flags 0, header extension length 0
  pos = SIGNATURE.length + 8;
  for (const row of rows) {
    yield* need(2);
    buf.writeInt16BE(columns.length, pos);
    pos += 2;
    for (let i = 0; i < columns.length; i++) {
      const value = row[i] ?? null;
      if (value === null) {
        yield* need(4);
        buf.writeInt32BE(-1, pos);
        pos += 4;
        continue;
      }
      switch (columns[i]!) {
        case "int4":
          yield* need(8);
          buf.writeInt32BE(4, pos);
          buf.writeInt32BE(Number(value), pos + 4);
          pos += 8;
          break;
        case "bytea": {
          const bytes = value instanceof Uint8Array ? value : Buffer.from(String(value), "utf8");
          yield* need(4 + bytes.length);
          buf.writeInt32BE(bytes.length, pos);
          buf.set(bytes, pos + 4);
          pos += 4 + bytes.length;
          break;
        }
        case "jsonb": {
          // jsonb's binary form: a version byte (1), then the JSON text.
          const text = String(value);
          const len = Buffer.byteLength(text, "utf8");
          yield* need(5 + len);
          buf.writeInt32BE(len + 1, pos);
          buf[pos + 4] = 1;
          buf.write(text, pos + 5, "utf8");
          pos += 5 + len;
          break;
        }
        case "text": {
          const text = String(value);
          const len = Buffer.byteLength(text, "utf8");
          yield* need(4 + len);
          buf.writeInt32BE(len, pos);
          buf.write(text, pos + 4, "utf8");
          pos += 4 + len;
          break;
        }
      }
    }
  }
  yield* need(2);
  buf.writeInt16BE(-1, pos);
  pos += 2;
  yield buf.subarray(0, pos);
}

/**
 * Streams `rows` into `table` (already created, columns in `columns` order) with one
 * `COPY ... FROM STDIN (FORMAT binary)` on `client`, inside the caller's transaction.
 * `table` must be a trusted, already-quoted identifier.
 */
export async function copyRows(
  client: pg.PoolClient,
  table: string,
  columns: readonly CopyColumn[],
  rows: Iterable<readonly CopyValue[]>,
): Promise<void> {
  const stream = client.query(copyFrom(`COPY ${table} FROM STDIN (FORMAT binary)`));
  await pipeline(Readable.from(encodeBinaryCopy(columns, rows)), stream);
}
