/**
 * The service process of the Agent Server benchmark (bench/agent-server.ts, decision H40): the
 * service as `threadline serve --graph bench=bench/agent-graph.ts:graph` runs it, on its own
 * schema, and beside it a trivial Express app that answers `POST /threads/:id/runs/wait` with
 * `{}` (the JSON body parsed, nothing else), so the floor's HTTP round trip is measured against
 * the same process and the same event loop as the service. Forked with `--import tsx`; talks
 * over IPC.
 *
 *   <databaseUrl> <schema>
 *     starts both on free loopback ports and sends `{ url, trivialUrl }`; answers
 *     `{ type: "cpu" }` with its `process.cpuUsage()`; shuts down and exits on `{ type: "stop" }`.
 */
import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import express from "express";
import { configSchema } from "../src/config/schema.js";
import { startService } from "../src/service/composition-root.js";

type Command = { type: "stop" } | { type: "cpu" };

const GRAPH_FILE = fileURLToPath(new URL("./agent-graph.ts", import.meta.url));

const [databaseUrl, schema] = process.argv.slice(2);
const config = configSchema.parse({
  database: { url: databaseUrl, schema },
  server: { port: 0, host: "127.0.0.1", rateLimit: { max: 1_000_000 } },
  cleanup: { enabled: false },
  log: { level: "silent" },
});
const service = await startService(config, {
  cleanup: false,
  webRoot: false,
  graphs: [{ name: "bench", file: GRAPH_FILE, exportName: "graph", source: "flag" }],
});

// The least an HTTP JSON endpoint does: parse the body, answer.
const trivial = express();
trivial.post("/threads/:thread_id/runs/wait", express.json({ limit: "1mb" }), (_req, res) => {
  res.json({});
});
const server: Server = trivial.listen(0, "127.0.0.1");
await once(server, "listening");

process.on("message", (command: Command) => {
  if (command.type === "cpu") {
    process.send?.({ cpu: process.cpuUsage() });
    return;
  }
  if (command.type !== "stop") return;
  server.closeAllConnections();
  server.close();
  void service.shutdown("bench done").finally(() => process.disconnect());
});
process.send?.({
  url: service.url,
  trivialUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
});
