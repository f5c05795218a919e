import { fileURLToPath } from "node:url";
import { packagesLoadedBy, SERVICE_PACKAGES } from "../helpers/module-graph.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const entry = (path: string) => fileURLToPath(new URL(`../../src/${path}`, import.meta.url));

// Agent runtimes import the root entry for the checkpointer alone: it must not drag the HTTP
// service, model clients, cron, PGlite, prom-client or Redis in. Measured in a fresh process that
// records every module it loads, so a lazy `import()` run at load time counts too. A fresh Node
// with tsx takes tens of seconds on a loaded machine, hence the long timeouts.
describe("the root entry", () => {
  it("loads none of the service's packages", async () => {
    const loaded = await packagesLoadedBy(entry("index.ts"), { cwd: root, tsx: true });
    // What the library does need is seen, so an empty recording cannot pass.
    // pg-pool is CommonJS, required by pg: seen through require.cache, not the resolve hook.
    for (const name of ["pg", "pg-pool", "@langchain/langgraph-checkpoint", "zod"])
      expect(loaded.has(name)).toBe(true);
    expect(SERVICE_PACKAGES.filter((name) => loaded.has(name))).toEqual([]);
  }, 300_000);

  it("is measured by a recorder that does see the service's packages", async () => {
    const loaded = await packagesLoadedBy(entry("service/index.ts"), { cwd: root, tsx: true });
    for (const name of ["express", "helmet", "prom-client", "ai", "@langchain/openai"])
      expect(loaded.has(name)).toBe(true);
  }, 300_000);
});
