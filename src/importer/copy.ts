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
  // Room for `n` more bytes: returns the full chunk to hand out first, if any (a field larger
  // than a chunk gets a chunk of its own). Plain functions, not generators: a generator per field
  // was an allocation per field.
  const room = (n: number): Buffer | undefined => {
    if (pos + n <= buf.length) return undefined;
    const full = pos > 0 ? buf.subarray(0, pos) : undefined;
    buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, n));
    pos = 0;
    return full;
  };
  // A length-prefixed UTF-8 field (`header`: 4 length bytes, 5 with jsonb's version byte 1).
  // UTF-8 takes at most 3 bytes per UTF-16 unit, so with that much room left the text is written
  // straight into the chunk and its length is what write() returns: one pass over the text
  // instead of Buffer.byteLength and then write. Otherwise it is measured first to make room.
  const text = (value: string, header: 4 | 5): Buffer | undefined => {
    let full: Buffer | undefined;
    let len: number;
    if (pos + header + value.length * 3 <= buf.length) {
      len = buf.write(value, pos + header, "utf8");
    } else {
      len = Buffer.byteLength(value, "utf8");
      full = room(header + len);
      buf.write(value, pos + header, "utf8");
    }
    buf.writeInt32BE(len + header - 4, pos);
    if (header === 5) buf[pos + 4] = 1;
    pos += header + len;
    return full;
  };
  SIGNATURE.copy(buf, 0);
  buf.fill(0, SIGNATURE.length, SIGNATURE.length + 8); // flags 0, header extension length 0
  pos = SIGNATURE.length + 8;
  let full: Buffer | undefined;
  for (const row of rows) {
    if ((full = room(2))) yield full;
    buf.writeInt16BE(columns.length, pos);
    pos += 2;
    for (let i = 0; i < columns.length; i++) {
      const value = row[i] ?? null;
      if (value === null) {
        if ((full = room(4))) yield full;
        buf.writeInt32BE(-1, pos);
        pos += 4;
        continue;
      }
      switch (columns[i]!) {
        case "int4":
          if ((full = room(8))) yield full;
          buf.writeInt32BE(4, pos);
          buf.writeInt32BE(Number(value), pos + 4);
          pos += 8;
          break;
        case "bytea":
          if (value instanceof Uint8Array) {
            if ((full = room(4 + value.length))) yield full;
            buf.writeInt32BE(value.length, pos);
            buf.set(value, pos + 4);
            pos += 4 + value.length;
          } else if ((full = text(String(value), 4))) {
            // Text stands for its UTF-8 bytes (serializeThread keeps JSON values as text).
            yield full;
          }
          break;
        case "jsonb":
          // jsonb's binary form: a version byte (1), then the JSON text.
          if ((full = text(String(value), 5))) yield full;
          break;
        case "text":
          if ((full = text(String(value), 4))) yield full;
          break;
      }
    }
  }
  if ((full = room(2))) yield full;
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
