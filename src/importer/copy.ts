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
 * value needs escaping. Yields buffers of about {@link CHUNK_BYTES}.
 */
export function* encodeBinaryCopy(
  columns: readonly CopyColumn[],
  rows: Iterable<readonly CopyValue[]>,
): Generator<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  const push = (b: Buffer) => {
    parts.push(b);
    size += b.length;
  };
  const header = Buffer.alloc(SIGNATURE.length + 8);
  SIGNATURE.copy(header, 0);
  push(header); // flags 0, header extension length 0
  for (const row of rows) {
    const head = Buffer.allocUnsafe(2);
    head.writeInt16BE(columns.length, 0);
    push(head);
    for (let i = 0; i < columns.length; i++) push(field(columns[i]!, row[i] ?? null));
    if (size >= CHUNK_BYTES) {
      yield Buffer.concat(parts, size);
      parts.length = 0;
      size = 0;
    }
  }
  const trailer = Buffer.allocUnsafe(2);
  trailer.writeInt16BE(-1, 0);
  push(trailer);
  yield Buffer.concat(parts, size);
}

function field(type: CopyColumn, value: CopyValue): Buffer {
  if (value === null) {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(-1, 0);
    return b;
  }
  switch (type) {
    case "int4": {
      const b = Buffer.allocUnsafe(8);
      b.writeInt32BE(4, 0);
      b.writeInt32BE(Number(value), 4);
      return b;
    }
    case "bytea": {
      const bytes = value instanceof Uint8Array ? value : Buffer.from(String(value), "utf8");
      const b = Buffer.allocUnsafe(4 + bytes.length);
      b.writeInt32BE(bytes.length, 0);
      b.set(bytes, 4);
      return b;
    }
    case "jsonb": {
      // jsonb's binary form: a version byte (1), then the JSON text.
      const text = String(value);
      const len = Buffer.byteLength(text, "utf8");
      const b = Buffer.allocUnsafe(5 + len);
      b.writeInt32BE(len + 1, 0);
      b[4] = 1;
      b.write(text, 5, "utf8");
      return b;
    }
    case "text": {
      const text = String(value);
      const len = Buffer.byteLength(text, "utf8");
      const b = Buffer.allocUnsafe(4 + len);
      b.writeInt32BE(len, 0);
      b.write(text, 4, "utf8");
      return b;
    }
  }
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
