import type { Command } from "commander";
import {
  addCommonOptions,
  configFlag,
  createServiceLogger,
  EXIT,
  loadCliConfig,
  runCommand,
  type CommonOptions,
} from "./context.js";

interface ServeOptions extends CommonOptions {
  port?: string;
  host?: string;
  graph?: string[];
}

/** A repeat of the first signal within this many ms is the same request delivered twice. */
const REPEAT_WINDOW_MS = 1_000;

/**
 * `threadline serve [--port N] [--host H] [--graph name=path:export]...`: runs the HTTP service and the cleanup schedule until
 * SIGTERM or SIGINT, then shuts down gracefully (readiness 503, streams finish or are cancelled
 * within `server.shutdownTimeout`, cleanup stops, pools close) and exits 0. A second signal
 * during the shutdown exits at once with 1.
 */
export function registerServeCommand(program: Command): void {
  addCommonOptions(
    program
      .command("serve")
      .description("run the HTTP chat service (embedded database when no DATABASE_URL)")
      .option("--port <n>", "port to listen on (default PORT or 8787)")
      .option(
        "--host <address>",
        "address to bind (default 127.0.0.1 without API keys, 0.0.0.0 with them)",
      )
      .option(
        "--graph <name=path:export>",
        "serve a LangGraph graph (repeatable; also config graphs: and ./langgraph.json)",
        (value: string, previous: string[] = []) => [...previous, value],
      ),
  ).action((opts: ServeOptions) =>
    runCommand(async () => {
      const server: Record<string, unknown> = {};
      if (opts.port !== undefined) server.port = configFlag("--port", "server.port", opts.port);
      if (opts.host !== undefined) server.host = configFlag("--host", "server.host", opts.host);
      const config = loadCliConfig(opts, { server });
      // The service logs JSON lines (what log collectors parse), also on a terminal.
      const logger = createServiceLogger(config.log.level);
      const cwd = process.cwd();
      // Loaded here, not at the top: other commands (and usage errors) skip the service's modules.
      const [
        { graphsFromConfig, graphsFromLangGraphJson, mergeGraphSpecs, parseGraphFlag },
        { startService },
      ] = await Promise.all([
        import("../graphs/spec.js"),
        import("../service/composition-root.js"),
      ]);
      const graphs = mergeGraphSpecs(
        graphsFromLangGraphJson(cwd),
        graphsFromConfig(config.graphs, cwd),
        (opts.graph ?? []).map((value) => parseGraphFlag(value, cwd)),
      );
      const service = await startService(config, { logger, graphs });

      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        process.once("SIGTERM", () => resolve("SIGTERM"));
        process.once("SIGINT", () => resolve("SIGINT"));
      });
      const firstAt = Date.now();
      const again = (second: NodeJS.Signals) => {
        // Ctrl-C on `npm start` reaches the whole process group, and npm forwards it once more:
        // the same signal arriving at once is that echo, not an operator insisting.
        if (second === signal && Date.now() - firstAt < REPEAT_WINDOW_MS) {
          process.once(second, again);
          return;
        }
        logger.warn({}, "second signal during shutdown: exiting now");
        process.exit(EXIT.failure);
      };
      process.once("SIGTERM", again);
      process.once("SIGINT", again);
      await service.shutdown(signal);
      process.off("SIGTERM", again);
      process.off("SIGINT", again);
      // Sockets of HTTP keep-alive agents (model clients) may linger; nothing is left to do.
      setTimeout(() => process.exit(process.exitCode ?? EXIT.ok), 2_000).unref();
      return EXIT.ok;
    }),
  );
}
