import { readFileSync } from "node:fs";

const text = readFileSync(new URL("../../docs/decisions.md", import.meta.url), "utf8");
const HEADING = /^### ([A-Z]\d+[a-z]?)\. .+ \(2026-\d\d-\d\d(?:, [^)]+)?\)$/;

describe("docs/decisions.md", () => {
  const headings = text.split("\n").filter((line) => line.startsWith("### "));

  it("heads every entry with an id and a date", () => {
    expect(headings.length).toBeGreaterThan(10);
    expect(headings.filter((h) => !HEADING.test(h))).toEqual([]);
    // Entries are headings, not numbered list items that carry no id.
    expect(text.split("\n").filter((line) => /^\d+[a-z]?\. \*\*/.test(line))).toEqual([]);
  });

  it("never gives two entries the same id", () => {
    const ids = headings.map((h) => HEADING.exec(h)?.[1]);
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
  });
});
