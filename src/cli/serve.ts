import type { Command } from "commander";
import { startService } from "../service/composition-root.js";
import {
  addCommonOptions,
  createCliLogger,
  EXIT,
  loadCliConfig,
  runCommand,
  UsageError,
  type CommonOptions,
} from "./context.js";

interface ServeOptions extends CommonOptions {
  port?: string;
  host?: string;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535)
    throw new UsageError(`--port must be an integer 0-65535, got ${value}`);
  return port;
}

/**
 * `threadline serve [--port N] [--host H]`: runs the HTTP service and the cleanup schedule until
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
      ),
  ).action((opts: ServeOptions) =>
    runCommand(async () => {
      const server: Record<string, unknown> = {};
      if (opts.port !== undefined) server.port = parsePort(opts.port);
      if (opts.host !== undefined) server.host = opts.host;
      const config = loadCliConfig(opts, { server });
      const logger = createCliLogger(config.log.level);
      const service = await startService(config, { logger });

      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        process.once("SIGTERM", () => resolve("SIGTERM"));
        process.once("SIGINT", () => resolve("SIGINT"));
      });
      const again = () => {
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
