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

/** Text fields up to this many UTF-16 units are tried as ASCII in a loop (see `CopyEncoder`). */
const SHORT_TEXT = 64;

/**
 * Encodes rows in the binary COPY format (`COPY ... FROM STDIN (FORMAT binary)`), one row at a
 * time: the signature, then per row a field count and each field as a length-prefixed value,
 * then -1. Binary rather than text: bytea payloads go as they are instead of doubled into hex,
 * and no value needs escaping. Fields are written straight into chunks of about
 * {@link CHUNK_BYTES} (one allocation per chunk, not one per field; a field larger than a chunk
 * gets a chunk of its own). Incremental, so the importer encodes a thread's rows as soon as they
 * are serialized: the bytes then wait outside the JS heap, where the garbage collector does not
 * copy them, instead of as strings that survive every scavenge until their batch is written
 * (decision I17).
 */
export class CopyEncoder {
  private readonly chunks: Buffer[] = [];
  private buf = Buffer.allocUnsafe(CHUNK_BYTES);
  private pos = 0;
  private count = 0;
  private done = false;

  constructor(private readonly columns: readonly CopyColumn[]) {
    SIGNATURE.copy(this.buf, 0);
    this.buf.fill(0, SIGNATURE.length, SIGNATURE.length + 8); // flags 0, header extension length 0
    this.pos = SIGNATURE.length + 8;
  }

  /** Rows encoded so far. */
  get rows(): number {
    return this.count;
  }

  /** A 32-bit big-endian integer at `at` (plain stores: cheaper than Buffer#writeInt32BE's checks). */
  private int32(value: number, at: number): void {
    const buf = this.buf;
    buf[at] = value >>> 24;
    buf[at + 1] = value >>> 16;
    buf[at + 2] = value >>> 8;
    buf[at + 3] = value;
  }

  /** Room for `n` more bytes: a full chunk is set aside and a new one started. */
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.pos > 0) this.chunks.push(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, n));
    this.pos = 0;
  }

  /**
   * A length-prefixed UTF-8 field (`header`: 4 length bytes, 5 with jsonb's version byte 1).
   * Short text (ids, channels, versions) is copied in a loop while it is ASCII: Buffer#write's
   * argument handling cost more than the copy for fields of a few dozen bytes. Longer text, or
   * short text that is not ASCII, goes through `write()`: UTF-8 takes at most 3 bytes per
   * UTF-16 unit, so with that much room left the text is written straight into the chunk and
   * its length is what `write()` returns (one pass instead of Buffer.byteLength and then write);
   * otherwise it is measured first to make room.
   */
  private text(value: string, header: 4 | 5): void {
    const n = value.length;
    if (n <= SHORT_TEXT) {
      this.room(header + n);
      const buf = this.buf;
      const at = this.pos + header;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c > 0x7f) break;
        buf[at + i] = c;
      }
      if (i === n) {
        this.int32(n + header - 4, this.pos);
        if (header === 5) buf[this.pos + 4] = 1;
        this.pos += header + n;
        return;
      }
    }
    let len: number;
    if (this.pos + header + n * 3 <= this.buf.length) {
      len = this.buf.write(value, this.pos + header, "utf8");
    } else {
      len = Buffer.byteLength(value, "utf8");
      this.room(header + len);
      this.buf.write(value, this.pos + header, "utf8");
    }
    this.int32(len + header - 4, this.pos);
    if (header === 5) this.buf[this.pos + 4] = 1;
    this.pos += header + len;
  }

  /** Appends one row (values in column order; `undefined` and `null` are NULL). */
  add(row: readonly CopyValue[]): void {
    if (this.done) throw new Error("CopyEncoder: rows added after finish()");
    const columns = this.columns;
    this.room(2);
    this.buf[this.pos] = columns.length >>> 8;
    this.buf[this.pos + 1] = columns.length;
    this.pos += 2;
    for (let i = 0; i < columns.length; i++) {
      const value = row[i] ?? null;
      if (value === null) {
        this.room(4);
        this.int32(-1, this.pos);
        this.pos += 4;
        continue;
      }
      switch (columns[i]!) {
        case "int4":
          this.room(8);
          this.int32(4, this.pos);
          // Checked: an index outside int4 fails here rather than wrapping.
          this.buf.writeInt32BE(Number(value), this.pos + 4);
          this.pos += 8;
          break;
        case "bytea":
          if (value instanceof Uint8Array) {
            this.room(4 + value.length);
            this.int32(value.length, this.pos);
            this.buf.set(value, this.pos + 4);
            this.pos += 4 + value.length;
          } else {
            // Text stands for its UTF-8 bytes (serializeThread keeps JSON values as text).
            this.text(String(value), 4);
          }
          break;
        case "jsonb":
          // jsonb's binary form: a version byte (1), then the JSON text.
          this.text(String(value), 5);
          break;
        case "text":
          this.text(String(value), 4);
          break;
      }
    }
    this.count++;
  }

  /** Writes the trailer and returns every chunk, in order. No rows can be added afterwards. */
  finish(): Buffer[] {
    if (!this.done) {
      this.done = true;
      this.room(2);
      this.buf.writeInt16BE(-1, this.pos);
      this.pos += 2;
      this.chunks.push(this.buf.subarray(0, this.pos));
    }
    return this.chunks;
  }
}

/**
 * Streams the encoded chunks of a {@link CopyEncoder} into `table` (already created, columns in
 * the encoder's order) with one `COPY ... FROM STDIN (FORMAT binary)` on `client`, inside the
 * caller's transaction. The chunks are only read, so the same ones can be sent again (the staged
 * retry after a unique violation). `table` must be a trusted, already-quoted identifier.
 */
export async function copyChunks(
  client: pg.PoolClient,
  table: string,
  chunks: readonly Buffer[],
): Promise<void> {
  const stream = client.query(copyFrom(`COPY ${table} FROM STDIN (FORMAT binary)`));
  await pipeline(Readable.from(chunks), stream);
}
