import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const here = fileURLToPath(new URL(".", import.meta.url));

/**
 * The page served at `/` (decision W1 in docs/decisions.md). `npm run build` writes it to `dist/web/`, which
 * `threadline serve` serves as static files; nothing is fetched from a CDN at run time.
 * `npm run dev:web` serves it with hot reload and forwards the API to a service on :8787.
 */
export default defineConfig({
  root: `${here}app`,
  base: "/",
  plugins: [react()],
  build: {
    outDir: `${here}../../dist/web`,
    emptyOutDir: true,
    target: "es2022",
    // One small app: a single chunk keeps the page one request deep.
    chunkSizeWarningLimit: 600,
    rolldownOptions: {
      treeshake: {
        // The SDK imports @langchain/core/messages for its message chunks; that index also loads
        // runnables, callbacks and the langsmith client, which the page never calls. Neither
        // package declares `sideEffects`, so they are declared side-effect free here: the unused
        // modules drop out (~200 kB -> see README for the gzipped size).
        moduleSideEffects: (id: string) =>
          !/node_modules[\\/](@langchain[\\/]core|langsmith)[\\/]/.test(id),
      },
    },
  },
  server: {
    proxy: Object.fromEntries(
      ["/api", "/health", "/assistants", "/threads", "/runs", "/info", "/ok"].map((path) => [
        path,
        "http://127.0.0.1:8787",
      ]),
    ),
  },
});
