import { describe, expect, it } from "vitest";
import { CopyEncoder, type CopyColumn, type CopyValue } from "../../../src/importer/copy.js";

/** Every row through one encoder, then its chunks. */
function encode(columns: readonly CopyColumn[], rows: ReadonlyArray<readonly CopyValue[]>) {
  const encoder = new CopyEncoder(columns);
  for (const row of rows) encoder.add(row);
  return encoder.finish();
}

/** The binary COPY encoding written field by field, as the format defines it. */
function reference(columns: readonly CopyColumn[], rows: ReadonlyArray<readonly CopyValue[]>) {
  const parts: Buffer[] = [Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"), Buffer.alloc(8)];
  const int = (n: number, bytes: 2 | 4) => {
    const b = Buffer.alloc(bytes);
    if (bytes === 2) b.writeInt16BE(n);
    else b.writeInt32BE(n);
    return b;
  };
  for (const row of rows) {
    parts.push(int(columns.length, 2));
    columns.forEach((type, i) => {
      const v = row[i] ?? null;
      if (v === null) return parts.push(int(-1, 4));
      if (type === "int4") return parts.push(int(4, 4), int(Number(v), 4));
      if (type === "bytea") {
        const b = v instanceof Uint8Array ? Buffer.from(v) : Buffer.from(String(v));
        return parts.push(int(b.length, 4), b);
      }
      const t = Buffer.from(String(v), "utf8");
      if (type === "jsonb") return parts.push(int(t.length + 1, 4), Buffer.from([1]), t);
      return parts.push(int(t.length, 4), t);
    });
  }
  parts.push(int(-1, 2));
  return Buffer.concat(parts);
}

describe("binary COPY encoding", () => {
  it("writes every field type, nulls and multi-byte text as the format defines them", () => {
    const columns: CopyColumn[] = ["text", "int4", "bytea", "jsonb", "text"];
    const rows: CopyValue[][] = [
      ["thread-é", -3, new Uint8Array([0, 1, 255]), '{"a":"ü"}', null],
      ["", 0, null, "[]", "x"],
    ];
    expect(Buffer.concat(encode(columns, rows)).equals(reference(columns, rows))).toBe(true);
  });

  it("splits into chunks without losing bytes, fields larger than a chunk included", () => {
    const columns: CopyColumn[] = ["text", "bytea", "jsonb"];
    const big = new Uint8Array(700 * 1024).map((_, i) => i % 251);
    const rows: CopyValue[][] = Array.from({ length: 3000 }, (_, i) => [
      `t-${i}-${"ñ".repeat(i % 50)}`,
      i % 1000 === 7 ? big : new Uint8Array(i % 300),
      JSON.stringify({ i, s: "€".repeat(i % 40) }),
    ]);
    const chunks = encode(columns, rows);
    expect(chunks.length).toBeGreaterThan(3);
    expect(Buffer.concat(chunks).equals(reference(columns, rows))).toBe(true);
  });

  it("writes text given for bytea as its UTF-8 bytes, whether it fits the chunk's rest or not", () => {
    const columns: CopyColumn[] = ["bytea", "text", "jsonb"];
    // Lengths around a chunk's end (256 KB) put fields on both sides of the room check: text
    // written straight into the chunk, and text measured first that needs the next chunk.
    const rows: CopyValue[][] = Array.from({ length: 400 }, (_, i) => [
      `{"v":"${"é€x".repeat(i * 7)}\ud800"}`,
      "a".repeat((i * 997) % 3000),
      JSON.stringify({ k: "ü".repeat(i % 200) }),
    ]);
    const chunks = encode(columns, rows);
    expect(chunks.length).toBeGreaterThan(1);
    expect(Buffer.concat(chunks).equals(reference(columns, rows))).toBe(true);
  });

  it("copies short ASCII text itself and hands anything else to Buffer#write, at every length around the cut", () => {
    const columns: CopyColumn[] = ["text", "jsonb", "bytea"];
    const rows: CopyValue[][] = [];
    for (let n = 0; n <= 70; n++) {
      const ascii = "k".repeat(n);
      // A non-ASCII unit at the end, at the start, and a lone surrogate: the ASCII loop stops
      // where it meets one and the whole field is written again as UTF-8.
      rows.push([ascii, `"${ascii}"`, ascii]);
      rows.push([`${ascii}é`, `"é${ascii}"`, `${ascii}\ud83d`]);
      rows.push([`\u007f${ascii}`, `"${ascii}\u0080"`, `€${ascii}`]);
    }
    const encoder = new CopyEncoder(columns);
    for (const row of rows) encoder.add(row);
    expect(encoder.rows).toBe(rows.length);
    expect(Buffer.concat(encoder.finish()).equals(reference(columns, rows))).toBe(true);
  });

  it("encodes one row at a time into the same bytes, and refuses rows after finish()", () => {
    const columns: CopyColumn[] = ["text", "int4", "bytea"];
    const rows: CopyValue[][] = Array.from({ length: 5000 }, (_, i) => [
      `thread-${i}`,
      i - 2500,
      JSON.stringify({ i, pad: "x".repeat(i % 400) }),
    ]);
    const encoder = new CopyEncoder(columns);
    for (const row of rows) encoder.add(row);
    const chunks = encoder.finish();
    expect(chunks.length).toBeGreaterThan(1);
    expect(encoder.finish()).toBe(chunks);
    expect(Buffer.concat(chunks).equals(reference(columns, rows))).toBe(true);
    expect(() => encoder.add(rows[0]!)).toThrow(/after finish/);
  });

  it("rejects an int4 value outside its range instead of wrapping it", () => {
    const encoder = new CopyEncoder(["int4"]);
    expect(() => encoder.add([2 ** 31])).toThrow(RangeError);
  });
});
