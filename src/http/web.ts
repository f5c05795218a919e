import { existsSync } from "node:fs";
import { join } from "node:path";
import express, { Router } from "express";
import { packageRoot } from "../paths.js";

/** Where `npm run build` puts the page (`dist/web/` of the package). */
export function defaultWebRoot(): string {
  return join(packageRoot(), "dist", "web");
}

/**
 * The page at `/` and its hashed assets under `/assets/` (cached for a year: their names change
 * with their contents; `index.html` is revalidated on every load). Anything else falls through
 * to the API routes. Without a build, `/` says how to make one instead of a bare 404.
 */
export function webRoutes(root: string): Router {
  const router = Router();
  const index = join(root, "index.html");
  router.use(
    "/assets",
    express.static(join(root, "assets"), { index: false, immutable: true, maxAge: "365d" }),
  );
  router.get("/", (_req, res) => {
    if (!existsSync(index)) {
      res
        .status(503)
        .type("text/plain")
        .send("The web page is not built: run `npm run build` (or `npm start`, which builds).\n");
      return;
    }
    res.setHeader("cache-control", "no-cache");
    res.sendFile(index);
  });
  return router;
}
