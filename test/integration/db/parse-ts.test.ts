import { installedSchema } from "../../helpers/db.js";

const { admin, schema } = installedSchema("tl_parse_ts");

/** Parses each text in a session with the given TimeZone and DateStyle; epoch ms or null. */
async function parseIn(zone: string, dateStyle: string, texts: string[]): Promise<unknown[]> {
  const client = await admin.connect();
  try {
    await client.query(`SET TimeZone = '${zone}'`);
    await client.query(`SET DateStyle = '${dateStyle}'`);
    const out: unknown[] = [];
    for (const text of texts) {
      const { rows } = await client.query<{ ms: string | null }>(
        `SELECT (extract(epoch FROM "${schema}".threadline_parse_ts($1)) * 1000)::bigint::text AS ms`,
        [text],
      );
      out.push(rows[0]!.ms === null ? null : Number(rows[0]!.ms));
    }
    return out;
  } finally {
    await client.query("RESET TimeZone; RESET DateStyle").catch(() => undefined);
    client.release();
  }
}

describe("threadline_parse_ts (migration 0011)", () => {
  const texts = [
    "2026-12-01T10:00:00.000Z",
    "2026-12-01T10:00:00+05:30",
    // No offset: the session zone used to decide the instant.
    "2026-12-01T10:00:00",
    "2026-12-01 10:00:00.123456",
    // Field order: the session DateStyle used to decide between Jan 2 and Feb 1.
    "2026-01-02",
    "not a timestamp",
    "",
  ];

  it("gives the same instant for the same text under two session time zones and date styles", async () => {
    const utc = await parseIn("UTC", "ISO, MDY", texts);
    const kolkata = await parseIn("Asia/Kolkata", "SQL, DMY", texts);
    const pacific = await parseIn("America/Los_Angeles", "German", texts);
    expect(kolkata).toEqual(utc);
    expect(pacific).toEqual(utc);
  });

  it("reads a text without an offset as UTC, and malformed text as NULL", async () => {
    const [z, offset, naive, micro, date, bad, empty] = await parseIn(
      "Pacific/Auckland",
      "ISO, DMY",
      texts,
    );
    expect(z).toBe(Date.UTC(2026, 11, 1, 10));
    expect(offset).toBe(Date.UTC(2026, 11, 1, 4, 30));
    expect(naive).toBe(Date.UTC(2026, 11, 1, 10));
    expect(micro).toBe(Date.UTC(2026, 11, 1, 10, 0, 0, 123));
    expect(date).toBe(Date.UTC(2026, 0, 2));
    expect(bad).toBeNull();
    expect(empty).toBeNull();
  });

  it("is declared STABLE, not IMMUTABLE", async () => {
    const { rows } = await admin.query<{ v: string }>(
      `SELECT p.provolatile AS v FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = $1 AND p.proname = 'threadline_parse_ts'`,
      [schema],
    );
    expect(rows).toEqual([{ v: "s" }]);
  });
});
