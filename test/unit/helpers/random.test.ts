import { seededRandom } from "../../helpers/random.js";

describe("seededRandom (fuzz inputs)", () => {
  it("replays the same values from the same FUZZ_SEED, and others from another", () => {
    const draw = (seed: string) => {
      process.env.FUZZ_SEED = seed;
      try {
        const rng = seededRandom("test");
        return {
          seed: rng.seed,
          values: [rng.next(), rng.int(1000), rng.uuid(), rng.bytes(8).toString("hex")],
        };
      } finally {
        delete process.env.FUZZ_SEED;
      }
    };
    expect(draw("12345")).toEqual(draw("12345"));
    expect(draw("12345").seed).toBe(12345);
    expect(draw("12346").values).not.toEqual(draw("12345").values);
    const uuid = draw("7").values[2] as string;
    expect(uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("draws uniformly enough over [0, 1)", () => {
    process.env.FUZZ_SEED = "99";
    try {
      const rng = seededRandom("test");
      const buckets = [0, 0, 0, 0];
      for (let i = 0; i < 4000; i++) buckets[Math.floor(rng.next() * 4)]!++;
      for (const n of buckets) expect(n).toBeGreaterThan(800);
    } finally {
      delete process.env.FUZZ_SEED;
    }
  });
});
