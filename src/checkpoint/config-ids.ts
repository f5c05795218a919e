import { ThreadlineError } from "../errors.js";

/**
 * The ids of a saver call's `config.configurable` (thread_id, checkpoint_ns, checkpoint_id),
 * parsed and validated in one place for every Threadline saver. Numbers are accepted as ids (as
 * LangGraph's own savers stringify them); anything else that is not a string is INVALID_INPUT.
 */

/** A `configurable` id: undefined when absent or empty, INVALID_INPUT when required. */
export function asId(value: unknown, field: string, required: true): string;
export function asId(value: unknown, field: string, required: false): string | undefined;
export function asId(value: unknown, field: string, required: boolean): string | undefined {
  if (value === undefined || value === null || value === "") {
    if (required) {
      throw new ThreadlineError(
        "INVALID_INPUT",
        `config.configurable.${field} is required (e.g. { configurable: { thread_id: "my-thread" } })`,
      );
    }
    return undefined;
  }
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  throw new ThreadlineError(
    "INVALID_INPUT",
    `config.configurable.${field} must be a string, got ${Array.isArray(value) ? "array" : typeof value}`,
  );
}

/** `checkpoint_ns`: "" when absent. */
export function asNamespace(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  throw new ThreadlineError("INVALID_INPUT", "config.configurable.checkpoint_ns must be a string");
}
