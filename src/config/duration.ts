const UNITS_MS = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
} as const;
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;

/**
 * Parses a duration such as `7d`, `12h`, `30m`, `45s` or `250ms` into milliseconds.
 * Returns `undefined` for anything else (callers turn that into a typed error with context).
 */
export function parseDuration(text: string): number | undefined {
  const match = DURATION_RE.exec(text.trim());
  if (!match) return undefined;
  const value = Number(match[1]) * UNITS_MS[match[2] as keyof typeof UNITS_MS];
  return Number.isFinite(value) && value > 0 ? Math.round(value) : undefined;
}

/** Formats milliseconds as a Postgres interval literal, e.g. `604800000 milliseconds`. */
export function toPgInterval(ms: number): string {
  return `${Math.round(ms)} milliseconds`;
}
