import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { Registry } from "prom-client";
import ts from "typescript";
import { ForwardingSaver } from "../../../src/checkpoint/forwarding-saver.js";
import { InstrumentedCheckpointer, registerServiceMetrics } from "../../../src/http/metrics.js";

// Every method of the installed BaseCheckpointSaver, with its parameter count. Abstract methods
// do not exist at runtime, so they are read from the package's declarations; the prototype adds
// any concrete method the declarations might not list.
function baseMethods(): Map<string, number> {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve("@langchain/langgraph-checkpoint/package.json");
  const file = join(dirname(pkg), "dist", "base.d.ts");
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.ES2022);
  const methods = new Map<string, number>();
  source.forEachChild((node) => {
    if (!ts.isClassDeclaration(node) || node.name?.text !== "BaseCheckpointSaver") return;
    for (const member of node.members) {
      if (ts.isMethodDeclaration(member) && ts.isIdentifier(member.name))
        methods.set(member.name.text, member.parameters.length);
    }
  });
  for (const name of Object.getOwnPropertyNames(BaseCheckpointSaver.prototype)) {
    const value = (BaseCheckpointSaver.prototype as unknown as Record<string, unknown>)[name];
    if (name !== "constructor" && typeof value === "function" && !methods.has(name))
      methods.set(name, (value as (...args: unknown[]) => unknown).length);
  }
  return methods;
}

// The base class's own methods, defined in terms of forwarded ones (`get` reads `getTuple`).
const NOT_FORWARDED = new Set(["get", "toJSON"]);

interface Call {
  method: string;
  args: unknown[];
}

// A saver that records every call it receives, whatever its name (a Proxy, so a method added by a
// later LangGraph is recorded without this test listing it), and returns `result`.
function recordingSaver(calls: Call[], result: object): BaseCheckpointSaver {
  return new Proxy({} as BaseCheckpointSaver, {
    get(_target, prop) {
      if (prop === "serde") return { marker: "serde" };
      if (typeof prop !== "string") return undefined;
      return (...args: unknown[]) => {
        calls.push({ method: prop, args });
        return result;
      };
    },
  });
}

async function* yieldOnce<T>(value: T): AsyncGenerator<T> {
  yield await Promise.resolve(value);
}

async function settle(out: unknown, result: object): Promise<unknown> {
  const value = await out;
  if (value === result) return value;
  if (value !== null && typeof value === "object" && Symbol.asyncIterator in value) {
    const items: unknown[] = [];
    for await (const item of value as AsyncIterable<unknown>) items.push(item);
    return items.length === 1 ? items[0] : items;
  }
  return value;
}

const wrappers: Array<[string, (inner: BaseCheckpointSaver) => BaseCheckpointSaver]> = [
  ["ForwardingSaver", (inner) => new ForwardingSaver(inner)],
  [
    "InstrumentedCheckpointer",
    (inner) => new InstrumentedCheckpointer(inner, registerServiceMetrics(new Registry(), {})),
  ],
];

describe("saver wrappers", () => {
  const methods = baseMethods();

  it("reads the base class's methods from the installed package", () => {
    // The ones this package version is known to have; more are welcome (and then checked below).
    for (const name of ["getTuple", "list", "put", "putWrites", "deleteThread"])
      expect(methods.has(name)).toBe(true);
    expect(methods.get("putWrites")).toBe(4);
  });

  for (const [label, wrap] of wrappers) {
    for (const [method, arity] of methods) {
      if (NOT_FORWARDED.has(method)) continue;
      it(`${label} forwards ${method} with all ${arity} arguments and its result`, async () => {
        const calls: Call[] = [];
        // Both a value and an async iterable, so `list` (a generator) can yield it.
        const result = {
          marker: "result",
          [Symbol.asyncIterator]: (): AsyncGenerator<object> => yieldOnce(result),
        };
        const saver = wrap(recordingSaver(calls, result));
        const args = Array.from({ length: arity }, (_, i) => ({ arg: i }));
        const fn = (saver as unknown as Record<string, (...a: unknown[]) => unknown>)[method];
        expect(typeof fn).toBe("function");
        const out = await settle(fn!.apply(saver, args), result);
        expect(out).toBe(result);
        expect(calls).toHaveLength(1);
        expect(calls[0]!.method).toBe(method);
        expect(calls[0]!.args).toHaveLength(arity);
        calls[0]!.args.forEach((arg, i) => expect(arg).toBe(args[i]));
      });
    }

    it(`${label} shares the inner saver's serializer`, () => {
      const saver = wrap(recordingSaver([], {}));
      expect(saver.serde).toEqual({ marker: "serde" });
    });
  }
});
