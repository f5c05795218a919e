import { writeFileSync } from "node:fs";
import os from "node:os";
import { FLOOR_IN_ROUNDS, benchCheckpoints, type CheckpointBenchResult } from "./checkpoint.js";
import { runExtras } from "./extras.js";
import { benchTurnFloor, type TurnFloorResult } from "./turn-floor.js";

/**
 * `npm run bench [-- --quick] [-- --json <file>] [-- --only checkpoint,instances,scale,prepared,agent,sweep,import,load,turncpu,embedded]`
 *
 * One process measures the official PostgresSaver, Threadline's PostgresCheckpointer, MemorySaver
 * and a raw-pg floor on the same Postgres with the same payloads, interleaved in rounds, and
 * prints ratios (medians of per-round ratios). Absolute times drift between runs; ratios are what
 * the targets are about.
 */
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const jsonAt = args.indexOf("--json");
const jsonFile = jsonAt >= 0 ? args[jsonAt + 1] : undefined;
const onlyAt = args.indexOf("--only");
const only = onlyAt >= 0 ? new Set((args[onlyAt + 1] ?? "").split(",")) : undefined;
const want = (name: string) => !only || only.has(name);
const url =
  process.env.BENCH_DATABASE_URL ??
  process.env.DATABASE_URL ??
  "postgres://postgres@127.0.0.1:5432/test";
const redisUrl = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

const fmt = (n: number | undefined, digits = 2) =>
  n === undefined || Number.isNaN(n) ? "-" : n.toFixed(digits);
const mark = (ok: boolean) => (ok ? "PASS" : "MISS");

interface Target {
  name: string;
  value: number | undefined;
  target: string;
  ok: boolean;
  /** A bound Threadline sets itself, beyond the targets. */
  own?: boolean;
}

const results: Record<string, unknown> = {
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  },
  quick,
  startedAt: new Date().toISOString(),
};
const targets: Target[] = [];

function printCheckpoint(r: CheckpointBenchResult, f: TurnFloorResult): void {
  const lines: string[] = [];
  lines.push("", "## Checkpointer (p50 / p99 ms; ratios are medians of per-round ratios)", "");
  lines.push(
    "| operation | official p50 | threadline p50 | memory p50 | threadline p99 | vs official | vs MemorySaver | official vs MemorySaver |",
  );
  lines.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const op of r.operations) {
    lines.push(
      `| ${op.operation} | ${fmt(op.p50.official, 3)} | ${fmt(op.p50.threadline, 3)} | ${fmt(op.p50.memory, 3)} | ${fmt(op.p99.threadline, 3)} | ${fmt(op.vsOfficial)}x | ${fmt(op.vsMemory)}x | ${fmt(op.officialVsMemory)}x |`,
    );
  }
  lines.push("", "| raw pg floor | p50 ms | p99 ms |", "| --- | ---: | ---: |");
  for (const [name, v] of Object.entries(r.floor))
    lines.push(`| ${name} | ${fmt(v.p50, 3)} | ${fmt(v.p99, 3)} |`);
  lines.push(
    "",
    `put throughput, 16 clients, pool 10: official ${fmt(r.throughput.official, 0)}/s, threadline ${fmt(r.throughput.threadline, 0)}/s, memory ${fmt(r.throughput.memory, 0)}/s (${fmt(r.throughput.ratio)}x official)`,
    `statements per chat turn: official ${fmt(r.statementsPerTurn.official, 1)}, threadline ${fmt(r.statementsPerTurn.threadline, 1)}`,
    `storage per thread after 20 turns: official ${r.storage.official.bytes} B, threadline ${r.storage.threadline.bytes} B (${fmt(r.storage.ratio)}x); bytes added by turn 20 vs turn 1: official ${fmt(r.storage.official.turn20 / r.storage.official.turn1)}x, threadline ${fmt(r.storage.growth)}x`,
  );
  lines.push(
    "",
    "Without the commit flush (`synchronous_commit = off` on both Postgres savers; informational, the targets use durable commits):",
    "",
    "| operation | official p50 | threadline p50 | memory p50 | vs official | vs MemorySaver |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const op of r.withoutFlush) {
    lines.push(
      `| ${op.operation} | ${fmt(op.p50.official, 3)} | ${fmt(op.p50.threadline, 3)} | ${fmt(op.p50.memory, 3)} | ${fmt(op.vsOfficial)}x | ${fmt(op.vsMemory)}x |`,
    );
  }
  const op = (name: string) => r.operations.find((o) => o.operation.startsWith(name));
  // The putWrites floor: a raw 0.4 KB INSERT that took its turn in putWrites' own rounds (same
  // pool); the ratio is the median of per-round ratios.
  const putWrites = op("putWrites");
  const insertMs = putWrites?.p50[FLOOR_IN_ROUNDS];
  const putWritesMs = putWrites?.p50.threadline;
  const putWritesVsInsert = putWrites?.vsFloor;
  const turnFloor = f.ratios["floor/memory"];
  lines.push(
    "",
    `putWrites (2 writes) p50 ${fmt(putWritesMs, 3)} ms vs raw single-row INSERT (0.4 KB) p50 ${fmt(insertMs, 3)} ms in the same rounds: ${fmt(putWritesVsInsert)}x (median of per-round ratios)`,
    "",
    `Chat turn floor (${f.turns} turns each, interleaved turn by turn, one pool): a MemorySaver whose getTuple first makes one primary-key SELECT and whose put first commits one 0.4 KB INSERT, driven by LangGraph like any saver (what its chained puts overlap is overlapped): p50 ${fmt(f.p50.floor, 3)} ms = ${fmt(turnFloor)}x MemorySaver (${fmt(f.p50.memory, 3)} ms); Threadline in the same rounds ${fmt(f.p50.threadline, 3)} ms = ${fmt(f.ratios["threadline/memory"])}x.`,
  );
  process.stdout.write(`${lines.join("\n")}\n`);
  const add = (
    name: string,
    value: number | undefined,
    target: string,
    ok: (v: number) => boolean,
    own = false,
  ) =>
    targets.push({
      name,
      value,
      target,
      ok: value !== undefined && ok(value),
      ...(own ? { own } : {}),
    });
  add(
    "getTuple latest vs official",
    op("getTuple latest (")?.vsOfficial,
    "<= 0.25x",
    (v) => v <= 0.25,
  );
  add(
    "getTuple latest vs official, cold process",
    op("getTuple latest, cold")?.vsOfficial,
    "<= 0.25x",
    (v) => v <= 0.25,
  );
  add("getTuple by id vs official", op("getTuple by id")?.vsOfficial, "<= 0.30x", (v) => v <= 0.3);
  add(
    "getTuple by id vs official, cold process",
    op("getTuple by id, cold")?.vsOfficial,
    "<= 0.25x",
    (v) => v <= 0.25,
  );
  add("put vs official", op("put")?.vsOfficial, "<= 0.60x", (v) => v <= 0.6);
  add(
    "putWrites (2 writes) vs official (the first performance issue's target)",
    op("putWrites")?.vsOfficial,
    "<= 0.50x",
    (v) => v <= 0.5,
    true,
  );
  add(
    "putWrites (2 writes) vs raw single-row INSERT (0.4 KB)",
    putWritesVsInsert,
    "<= 1.5x",
    (v) => v <= 1.5,
  );
  add(
    "list limit 10 (200 cps) vs official",
    op("list limit 10, 200")?.vsOfficial,
    "<= 0.10x",
    (v) => v <= 0.1,
  );
  add("put throughput vs official", r.throughput.ratio, ">= 1.8x", (v) => v >= 1.8);
  add("chat turn vs MemorySaver", op("chat turn")?.vsMemory, "<= 1.3x", (v) => v <= 1.3);
  add(
    "chat turn vs MemorySaver (the first performance issue's bound)",
    op("chat turn")?.vsMemory,
    "<= 1.6x",
    (v) => v <= 1.6,
    true,
  );
  add(
    "chat turn: its floor vs MemorySaver (MemorySaver + 1 read per getTuple + 1 commit per put)",
    turnFloor,
    "floor (<= 1.3x needed)",
    (v) => v <= 1.3,
  );
  add("statements per chat turn", r.statementsPerTurn.threadline, "<= 6", (v) => v <= 6);
  add("storage after 20 turns vs official", r.storage.ratio, "<= 0.30x", (v) => v <= 0.3);
  add("turn 20 bytes vs turn 1 bytes", r.storage.growth, "<= 1.3x", (v) => v <= 1.3);
}

if (want("checkpoint")) {
  log(`checkpoint benchmark (${quick ? "quick" : "full"}) on ${url.replace(/:[^:@/]*@/, ":***@")}`);
  const r = await benchCheckpoints({ url, quick, log });
  results.checkpoint = r;
  log("chat turn floor (MemorySaver + one read per getTuple + one commit per put)");
  const f = await benchTurnFloor({ url, quick });
  results.turnFloor = f;
  printCheckpoint(r, f);
}

if (want("instances")) {
  const { benchInstances } = await import("./instances.js");
  log("instances benchmark (round robin over 3 checkpointers, DeltaChannel graph)");
  const r = await benchInstances({ url, quick });
  results.instances = r;
  const rr = r.roundRobin;
  const d = r.delta;
  process.stdout.write(
    [
      "",
      "## Across instances (one database; p50 ms; ratios are medians of per-round ratios)",
      "",
      "| figure | threadline | official | MemorySaver | floor saver | threadline vs MemorySaver | threadline vs official | floor vs MemorySaver | threadline vs floor |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
      `| chat turn, every turn on the next of 3 checkpointers | ${fmt(rr.p50.threadline, 3)} | - | ${fmt(rr.p50.memory, 3)} | ${fmt(rr.p50.floor, 3)} | ${fmt(rr.ratios["threadline/memory"])}x | - | ${fmt(r.floor.ratio)}x | ${fmt(r.floor.threadlineRatio)}x |`,
      `| chat turn, messages as DeltaChannel(messagesDeltaReducer) | ${fmt(d.p50.threadline, 3)} | ${fmt(d.p50.official, 3)} | ${fmt(d.p50.memory, 3)} | ${fmt(d.p50.floor, 3)} | ${fmt(d.ratios["threadline/memory"])}x | ${fmt(d.ratios["threadline/official"])}x | ${fmt(r.floor.deltaRatio)}x | ${fmt(r.floor.deltaThreadlineRatio)}x |`,
      `| getDeltaChannelHistory, 20-turn thread, cold | ${fmt(d.historyMs.threadline, 3)} | ${fmt(d.historyMs.official, 3)} | - | - | - | ${fmt(d.historyMs.ratio)}x | - | - |`,
      "",
      `getDeltaChannelHistory statements (round trips): threadline ${d.historyStatements.threadline}, official ${d.historyStatements.official}. Floor saver, in the same rounds on the same pools: MemorySaver that first makes one primary-key SELECT per getTuple and per getDeltaChannelHistory and commits one 0.4 KB INSERT per put (and, in the DeltaChannel graph, per putWrites of messages), driven by LangGraph like any saver; its statements alone: SELECT by primary key ${fmt(r.floor.selectMs, 3)} ms, single-row INSERT ${fmt(r.floor.insertMs, 3)} ms.`,
      "",
    ].join("\n"),
  );
  const t = (name: string, value: number | undefined, target: string, ok: boolean) =>
    targets.push({ name, value, target, ok });
  const v1 = rr.ratios["threadline/memory"];
  t("round robin over 3 instances: chat turn vs MemorySaver", v1, "<= 1.6x", (v1 ?? 9) <= 1.6);
  t(
    "round robin: its floor vs MemorySaver (MemorySaver + 1 read + 1 commit per put, same pools)",
    r.floor.ratio,
    "floor (<= 1.6x needed)",
    r.floor.ratio <= 1.6,
  );
  const v2 = d.ratios["threadline/memory"];
  t("DeltaChannel graph: chat turn vs MemorySaver", v2, "<= 1.3x", (v2 ?? 9) <= 1.3);
  t(
    "DeltaChannel: its floor vs MemorySaver (+ 1 read per read, 1 commit per put and per messages write)",
    r.floor.deltaRatio,
    "floor (<= 1.3x needed)",
    r.floor.deltaRatio <= 1.3,
  );
  t(
    "DeltaChannel: getDeltaChannelHistory round trips",
    d.historyStatements.threadline,
    "1",
    d.historyStatements.threadline === 1,
  );
}

if (want("scale")) {
  const { benchScale } = await import("./scale.js");
  log(
    `scale benchmark (1k checkpoints vs ${quick ? "100k in 10k threads (quick)" : "1M in 100k threads"}, real PostgresCheckpointer)`,
  );
  const r = await benchScale({ url, quick, log });
  results.scale = r;
  const big = quick ? "100k" : "1M";
  const lines = [
    "",
    `## Flat at scale: ${r.small.checkpoints} checkpoints in ${r.small.threads} threads vs ${r.big.checkpoints} in ${r.big.threads} threads${quick ? " (quick: the full run uses 1M in 100k threads)" : ""} (p50 / p99 ms, ${r.rounds} interleaved rounds on random threads)`,
    "",
    `| operation | ${r.small.checkpoints} p50 | ${r.big.checkpoints} p50 | ${r.small.checkpoints} p99 | ${r.big.checkpoints} p99 | p50 ${big} / 1k | median per-round ratio |`,
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const op of r.operations)
    lines.push(
      `| ${op.operation} | ${fmt(op.p50.small, 3)} | ${fmt(op.p50.big, 3)} | ${fmt(op.p99.small, 3)} | ${fmt(op.p99.big, 3)} | ${fmt(op.ratio)}x | ${fmt(op.roundRatio)}x |`,
    );
  lines.push(
    "",
    `Big set: ${fmt(r.big.bytes / 2 ** 20, 0)} MiB (tables + indexes), built from one template thread written by PostgresCheckpointer (${r.checkpointsPerThread} checkpoints, their blobs, writes and activity row) in ${fmt(r.buildMs.total / 1000, 1)} s: copy ${fmt(r.buildMs.copy / 1000, 1)} s, VACUUM ANALYZE ${fmt(r.buildMs.vacuum / 1000, 1)} s.`,
    "",
  );
  process.stdout.write(`${lines.join("\n")}\n`);
  for (const op of r.operations.filter((o) => !o.operation.startsWith("raw floor")))
    targets.push({
      name: `${op.operation} p50, ${big} checkpoints in ${r.big.threads} threads vs 1k`,
      value: op.ratio,
      target: "<= 1.15x",
      ok: op.ratio <= 1.15,
    });
}

if (want("prepared")) {
  const { benchPrepared } = await import("./prepared.js");
  log("prepared statements benchmark (named vs unnamed, as behind a transaction pooler)");
  const r = await benchPrepared({ url, quick });
  results.prepared = r;
  process.stdout.write(
    [
      "",
      "## Named vs unnamed statements (`database.preparedStatements`; p50 ms)",
      "",
      "| figure | named (default) | unnamed (`false`) | unnamed vs named |",
      "| --- | ---: | ---: | ---: |",
      `| chat turn (invoke) | ${fmt(r.chatTurn.p50.named, 3)} | ${fmt(r.chatTurn.p50.unnamed, 3)} | ${fmt(r.chatTurn.ratios["unnamed/named"])}x |`,
      `| getTuple latest, 20-turn thread, no cache | ${fmt(r.getTuple.named, 3)} | ${fmt(r.getTuple.unnamed, 3)} | ${fmt(r.getTuple.ratio)}x |`,
      "",
    ].join("\n"),
  );
}

if (want("agent")) {
  const { benchAgentServer } = await import("./agent-server.js");
  log("Agent Server benchmark (runs.wait and runs.stream over HTTP vs in-process MemorySaver)");
  const r = await benchAgentServer({ url, quick });
  results.agentServer = r;
  const x = (v: number) => `${fmt(v)}x`;
  process.stdout.write(
    [
      "",
      `## Agent Server turn over HTTP vs the same graph in-process (p50 ms; service in its own process; ${r.rounds} rounds of ${r.turnsPerRound} turns, ratios are medians of per-round ratios)`,
      "",
      "| figure | p50 ms | vs in-process MemorySaver |",
      "| --- | ---: | ---: |",
      `| \`runs.wait\` turn (SDK over HTTP, Postgres) | ${fmt(r.p50.wait, 3)} | ${x(r.ratios["wait/memory"])} |`,
      `| \`runs.stream\` turn, values (SDK over HTTP, Postgres) | ${fmt(r.p50.stream, 3)} | ${x(r.ratios["stream/memory"])} |`,
      `| \`graph.invoke\` in-process on MemorySaver | ${fmt(r.p50.memory, 3)} | 1.00x |`,
      `| \`graph.invoke\` in-process on PostgresCheckpointer | ${fmt(r.p50.threadline, 3)} | ${x(r.ratios["threadline/memory"])} |`,
      `| SDK \`runs.wait\` to a trivial route in the service's process | ${fmt(r.p50.sdk, 3)} | ${x(r.ratios["sdk/memory"])} |`,
      `| plain \`fetch\` POST to that route | ${fmt(r.p50.http, 3)} | ${x(r.ratios["http/memory"])} |`,
      `| durable single-row INSERT (one commit) | ${fmt(r.p50.commit, 3)} | ${x(r.ratios["commit/memory"])} |`,
      `| raw floor: MemorySaver + SDK round trip + ${2 + r.graphCommitsPerTurn} commits (start, ${r.graphCommitsPerTurn} puts, end) | ${fmt(r.p50.rawFloor, 3)} | ${x(r.ratios["rawFloor/memory"])} |`,
      `| Threadline floor: PostgresCheckpointer in-process + SDK round trip + 2 commits | ${fmt(r.p50.floor, 3)} | ${x(r.ratios["floor/memory"])} |`,
      "",
      `\`runs.wait\` vs raw floor ${x(r.ratios["wait/rawFloor"])}, vs Threadline floor ${x(r.ratios["wait/floor"])}; \`runs.stream\` vs Threadline floor ${x(r.ratios["stream/floor"])}.`,
      "",
    ].join("\n"),
  );
  const wait = r.ratios["wait/memory"];
  targets.push({
    name: "Agent Server runs.wait turn over HTTP vs in-process MemorySaver",
    value: wait,
    target: "<= 1.5x",
    ok: wait <= 1.5,
  });
}

// The embedded database starts `threadline serve` three times (minutes on a loaded machine):
// full runs only, or `--only embedded`.
if (only?.has("embedded") || (!only && !quick)) {
  const { benchEmbedded } = await import("./embedded.js");
  log("embedded database (PGlite) benchmark: first start, warm start, chat turns");
  const r = await benchEmbedded({ quick, databaseUrl: url, log });
  results.embedded = r;
  const row = (name: string, s: typeof r.first) =>
    `| ${name} | ${fmt(s.startMs / 1000, 1)} s | ${fmt(s.peakRssMiB, 0)} MiB | ${fmt(s.rssMiB, 0)} MiB | ${fmt(s.appRssMiB, 0)} MiB |`;
  process.stdout.write(
    [
      "",
      "## Embedded database (PGlite: `npm start` without DATABASE_URL, the built CLI)",
      "",
      "| start | to listening | peak RSS during start (service + children) | RSS after chat turns (service + children) | service process alone |",
      "| --- | ---: | ---: | ---: | ---: |",
      row("first (empty data directory)", r.first),
      row("warm (same directory)", r.warm),
      "",
      `HTTP chat turn p50: embedded ${fmt(r.chatTurnMs, 1)} ms, same service on the Postgres server ${fmt(r.chatTurnServerMs, 1)} ms (${fmt(r.chatTurnMs / r.chatTurnServerMs)}x), ${r.turns} turns each`,
      "",
    ].join("\n"),
  );
  targets.push({
    name: "embedded: RSS after first start (service + children), MiB",
    value: r.first.rssMiB,
    target: "<= 400",
    ok: r.first.rssMiB <= 400,
  });
}

await runExtras({ url, redisUrl, quick, log, targets, want, results });

if (targets.length > 0) {
  const lines = [
    "",
    "## Targets",
    "",
    "| figure | measured | target | |",
    "| --- | ---: | --- | --- |",
  ];
  for (const t of targets.filter((x) => !x.own))
    lines.push(`| ${t.name} | ${fmt(t.value)} | ${t.target} | ${mark(t.ok)} |`);
  const own = targets.filter((x) => x.own);
  if (own.length > 0) {
    lines.push("", "Threadline's own bounds (beyond the issue's targets):", "");
    lines.push("| figure | measured | bound | |", "| --- | ---: | --- | --- |");
    for (const t of own)
      lines.push(`| ${t.name} | ${fmt(t.value)} | ${t.target} | ${mark(t.ok)} |`);
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}
results.targets = targets;
results.finishedAt = new Date().toISOString();
if (jsonFile) {
  writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
  log(`figures written to ${jsonFile}`);
}
