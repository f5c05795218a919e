import { readFileSync, readdirSync } from "node:fs";

/** /proc's CPU times are in USER_HZ ticks, 100 per second on every Linux ABI. */
const USER_HZ = 100;

/**
 * CPU milliseconds used so far by all Postgres server processes of this host (backends, WAL
 * writer, checkpointer, and backends that exited, through the postmaster's children times), read
 * from /proc; `undefined` without /proc or without a process named postgres, as for a server on
 * another host.
 */
export function postgresCpuMs(): number | undefined {
  let postgres: number | undefined;
  let pids: string[];
  try {
    pids = readdirSync("/proc");
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // comm is in parentheses and may hold spaces; the fields after it are space-separated.
      const close = stat.lastIndexOf(")");
      if (stat.slice(stat.indexOf("(") + 1, close) !== "postgres") continue;
      const fields = stat.slice(close + 2).split(" ");
      // utime, stime, cutime and cstime are fields 14-17 of the line, 12-15 after comm. A
      // backend that exits during the run takes its utime with it, and the postmaster, which
      // reaps it, gains it as cutime: summing all four keeps the total whole.
      const ticks = fields.slice(11, 15).reduce((n, f) => n + Number(f), 0);
      postgres = (postgres ?? 0) + (ticks * 1000) / USER_HZ;
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return postgres;
}
