import { compareChannelVersions, maxChannelVersion } from "@langchain/langgraph-checkpoint";
import { nextChannelVersion } from "../../../../src/checkpoint/postgres/saver.js";

describe("channel versions", () => {
  it("writers forking from the same version get different next versions", () => {
    // 9 random digits: two forks collide with probability 1e-9. Among 2,000 draws the expected
    // number of colliding pairs is 0.002 (birthday bound), so more than 2 means the fraction is
    // not random; asserting 0 over 20,000 draws failed one run in five by chance.
    const seen = new Set<number>();
    for (let i = 0; i < 2_000; i++) seen.add(nextChannelVersion(41.3));
    expect(seen.size).toBeGreaterThanOrEqual(1_998);
  });

  it("the integer part goes up by one from integers, fractions, Python strings and nothing", () => {
    for (const [current, next] of [
      [undefined, 1],
      [null, 1],
      [0, 1],
      [7, 8],
      [7.4999, 8],
      ["00000000000000000000000000000003.0.7312", 4],
      ["12", 13],
      ["not a version", 1],
    ] as const) {
      const v = nextChannelVersion(current);
      expect(Math.floor(v)).toBe(next);
      expect(v - next).toBeGreaterThan(0);
      expect(v - next).toBeLessThan(1);
    }
  });

  it("each version is greater than the one it follows, as LangGraph compares them (numbers)", () => {
    let v: number | undefined;
    for (let i = 0; i < 500; i++) {
      const next = nextChannelVersion(v);
      if (v !== undefined) {
        expect(next > v).toBe(true);
        expect(compareChannelVersions(next, v)).toBe(1);
        expect(maxChannelVersion(v, next)).toBe(next);
      }
      // The official saver's integers continue the same way.
      expect(next > i).toBe(true);
      v = next;
    }
  });

  it("prints the same through String and JSON (no exponent), so blob keys match checkpoint versions", () => {
    for (let i = 0; i < 1_000; i++) {
      const v = nextChannelVersion(i * 997);
      const text = String(v);
      expect(JSON.stringify(v)).toBe(text);
      expect(Number(text)).toBe(v);
      expect(text).toMatch(/^\d+\.\d{1,9}$/);
    }
  });
});
