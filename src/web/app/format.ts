import type { Message } from "@langchain/langgraph-sdk";

/** The text of a message's content (string, or the text parts of a content array). */
export function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part: unknown) => {
        if (typeof part === "string") return part;
        const p = part as { type?: unknown; text?: unknown };
        return p.type === "text" && typeof p.text === "string" ? p.text : "";
      })
      .join("");
  }
  return "";
}

/** A thread's title: its first user message, shortened. */
export function titleOf(values: unknown): string | null {
  const messages = (values as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(messages)) return null;
  const first = (messages as Message[]).find((m) => m.type === "human");
  if (!first) return null;
  const text = textOf(first.content).trim().replace(/\s+/g, " ");
  if (!text) return null;
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const units: [Intl.RelativeTimeFormatUnit, number][] = [
  ["day", 86_400_000],
  ["hour", 3_600_000],
  ["minute", 60_000],
  ["second", 1_000],
];
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/** "5 minutes ago", "in 7 days". */
export function fromNow(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "unknown";
  const diff = Date.parse(iso) - now;
  if (Number.isNaN(diff)) return "unknown";
  for (const [unit, ms] of units) {
    if (Math.abs(diff) >= ms || unit === "second") {
      return relative.format(Math.round(diff / ms), unit);
    }
  }
  return "now";
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleString();
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function duration(ms: number): string {
  const day = 86_400_000;
  if (ms % day === 0) return `${ms / day} d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Math.round(ms / 1000)} s`;
}

/** When the TTL sweep may delete a thread last active at `iso`. */
export function expiresAt(
  iso: string | null | undefined,
  ttlMs: number | undefined,
): string | null {
  if (!iso || ttlMs === undefined) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : new Date(t + ttlMs).toISOString();
}

export function json(value: unknown): string {
  try {
    return JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    return String(value);
  }
}
