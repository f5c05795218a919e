import { Router } from "express";
import { z } from "zod";
import type { LoadedGraph } from "../../graphs/load.js";
import { assistantOr404, param, parseBody, sendJson, type AgentServerDeps } from "./common.js";

/** When the service started: the assistants' created_at (they exist as long as it serves). */
const STARTED_AT = new Date().toISOString();

/** An assistant in the API's shape: one per graph, version 1, no stored config. */
export function assistantJson(graph: LoadedGraph): Record<string, unknown> {
  return {
    assistant_id: graph.assistantId,
    graph_id: graph.name,
    name: graph.name,
    description: graph.description ?? null,
    config: {},
    context: {},
    metadata: { created_by: "system" },
    version: 1,
    created_at: STARTED_AT,
    updated_at: STARTED_AT,
  };
}

const searchBody = z.object({
  graph_id: z.string().optional(),
  name: z.string().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  limit: z.number().int().min(1).max(1000).default(10),
  offset: z.number().int().min(0).default(0),
  sort_by: z.enum(["assistant_id", "graph_id", "name", "created_at", "updated_at"]).optional(),
  sort_order: z.enum(["asc", "desc"]).optional(),
  select: z.array(z.string()).optional(),
});

const countBody = searchBody.pick({ graph_id: true, name: true, metadata: true });

function matches(graph: LoadedGraph, q: z.output<typeof countBody>): boolean {
  if (q.graph_id !== undefined && graph.name !== q.graph_id) return false;
  if (q.name !== undefined && !graph.name.includes(q.name)) return false;
  if (q.metadata) {
    for (const [k, v] of Object.entries(q.metadata)) {
      if (k !== "created_by" || v !== "system") return false;
    }
  }
  return true;
}

/** JSON schema of a graph's state: its channels (the shape LangGraph builds from annotations). */
function stateSchema(graph: LoadedGraph): Record<string, unknown> {
  const channels = Object.keys(graph.graph.channels ?? {}).filter(
    (name) => !name.startsWith("__") && !name.startsWith("branch:"),
  );
  return {
    title: graph.name,
    type: "object",
    properties: Object.fromEntries(channels.map((c) => [c, {}])),
  };
}

/**
 * `POST /assistants/search`, `POST /assistants/count`, `GET /assistants/{id}`,
 * `GET /assistants/{id}/graph`, `GET /assistants/{id}/schemas`. Assistants are the served graphs
 * (read-only): creating, versioning or deleting them is not implemented.
 */
export function assistantRoutes(deps: AgentServerDeps): Router {
  const router = Router();

  router.post("/assistants/search", (req, res) => {
    const q = parseBody(searchBody, req.body);
    let list = deps.graphs.list().filter((g) => matches(g, q));
    if (q.sort_by) {
      const key = q.sort_by === "name" || q.sort_by === "graph_id" ? "name" : "assistantId";
      list = [...list].sort((a, b) => a[key].localeCompare(b[key]));
      if (q.sort_order === "desc") list.reverse();
    }
    const page = list.slice(q.offset, q.offset + q.limit);
    res.setHeader("x-pagination-total", String(list.length));
    if (q.offset + q.limit < list.length)
      res.setHeader("x-pagination-next", String(q.offset + q.limit));
    sendJson(res, 200, page.map(assistantJson));
  });

  router.post("/assistants/count", (req, res) => {
    const q = parseBody(countBody, req.body);
    sendJson(res, 200, deps.graphs.list().filter((g) => matches(g, q)).length);
  });

  router.get("/assistants/:assistant_id", (req, res) => {
    sendJson(res, 200, assistantJson(assistantOr404(deps, param(req, "assistant_id"))));
  });

  router.get("/assistants/:assistant_id/graph", async (req, res) => {
    const graph = assistantOr404(deps, param(req, "assistant_id"));
    const raw = req.query.xray;
    const xray =
      raw === "true" ? true : typeof raw === "string" && /^\d+$/.test(raw) ? Number(raw) : false;
    const drawable = await graph.graph.getGraphAsync({ xray });
    sendJson(res, 200, drawable.toJSON());
  });

  router.get("/assistants/:assistant_id/schemas", (req, res) => {
    const graph = assistantOr404(deps, param(req, "assistant_id"));
    const state = stateSchema(graph);
    sendJson(res, 200, {
      graph_id: graph.name,
      input_schema: state,
      output_schema: state,
      state_schema: state,
      config_schema: null,
      context_schema: null,
    });
  });

  return router;
}
