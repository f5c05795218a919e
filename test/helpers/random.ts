import { randomInt } from "node:crypto";
import { onTestFailed } from "vitest";

/** A seeded source of randomness for fuzz tests: the same seed replays the same inputs. */
export interface SeededRandom {
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  bytes(n: number): Buffer;
  uuid(): string;
}

/**
 * mulberry32 seeded from `FUZZ_SEED` when set, otherwise from a fresh random seed; a failing test
 * prints the seed and the command that replays it (call inside a test).
 */
export function seededRandom(name: string): SeededRandom {
  const fromEnv = process.env.FUZZ_SEED;
  const seed = fromEnv !== undefined && fromEnv !== "" ? Number(fromEnv) >>> 0 : randomInt(2 ** 32);
  onTestFailed(() => {
    process.stderr.write(`${name}: fuzz seed ${seed}; replay with FUZZ_SEED=${seed}\n`);
  });
  let state = seed;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (n: number) => Math.floor(next() * n);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  return {
    seed,
    next,
    int,
    pick: (xs) => xs[int(xs.length)]!,
    bytes,
    uuid: () => {
      const b = bytes(16);
      b[6] = (b[6]! & 0x0f) | 0x40;
      b[8] = (b[8]! & 0x3f) | 0x80;
      const h = b.toString("hex");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    },
  };
}
