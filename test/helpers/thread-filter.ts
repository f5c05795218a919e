/**
 * Checks SQL text for the property a Citus router query needs: every reference to a table
 * distributed by thread_id is filtered by `thread_id = <parameter>` on that very reference (its
 * alias), in the WHERE/ON of its own query level, with no OR beside it; every INSERT into such a
 * table takes its thread_id straight from a parameter. A join condition such as
 * `x.thread_id = w.thread_id` does not count: Citus only prunes shards by a value it can see.
 *
 * It reads the statements Threadline writes (one style, no quoted aliases), not arbitrary SQL;
 * anything it cannot classify is reported as a problem rather than passed.
 */

/** What stands for "a parameter": `$n` in statements, a function's argument in its body. */
export type ParamPattern = string;

/** `$1`, `$2`, ... */
export const POSITIONAL: ParamPattern = String.raw`\$\d+`;

const KEYWORDS = new Set(
  (
    "where on set join cross left right inner full natural using values select returning " +
    "group order limit offset union for having window and or as default lateral"
  ).split(" "),
);

/** The text with comments and string literals blanked (same length, so positions hold). */
function blank(sql: string): string {
  return sql
    .replace(/--[^\n]*/g, (m) => " ".repeat(m.length))
    .replace(/'(?:[^']|'')*'/g, (m) => `'${" ".repeat(m.length - 2)}'`);
}

/** Parenthesis depth before each character. */
function depths(sql: string): number[] {
  const out: number[] = [];
  let d = 0;
  for (const ch of sql) {
    if (ch === ")") d--;
    out.push(d);
    if (ch === "(") d++;
  }
  return out;
}

/**
 * The query level a position belongs to: from the nearest enclosing `(` (or the start) to its
 * `)` (or the end), cut at UNION / `;` of the same level. Text of deeper levels is blanked, so
 * a filter inside a nested subquery does not count for the outer reference.
 */
function levelText(sql: string, d: number[], at: number): string {
  const level = d[at]!;
  let start = at;
  while (start > 0 && d[start - 1]! >= level) start--;
  let end = at;
  // The level ends at the `)` that closes it (depth below the level); a `)` at the level's own
  // depth closes a nested group, such as `now()`, and does not end it.
  while (end < sql.length && d[end]! >= level) end++;
  let text = "";
  for (let i = start; i < end; i++) text += d[i]! > level ? " " : sql[i]!;
  // The branch of a UNION (or the statement of a body) that holds `at`.
  const offset = at - start;
  const cuts = [...text.matchAll(/\bunion(\s+all)?\b|;/gi)].map((m) => m.index);
  const from = Math.max(0, ...cuts.filter((c) => c <= offset));
  const to = Math.min(text.length, ...cuts.filter((c) => c > offset));
  return text.slice(from, to);
}

/** The comma-separated items of a parenthesized or bare list at one level. */
function splitTop(list: string): string[] {
  const items: string[] = [];
  let d = 0;
  let cur = "";
  for (const ch of list) {
    if (ch === "(") d++;
    if (ch === ")") d--;
    if (ch === "," && d === 0) {
      items.push(cur.trim());
      cur = "";
    } else cur += ch;
  }
  if (cur.trim() !== "") items.push(cur.trim());
  return items;
}

/** The text of the balanced group that opens at `open` (a `(`), without the parentheses. */
function group(sql: string, open: number): string {
  let d = 0;
  for (let i = open; i < sql.length; i++) {
    if (sql[i] === "(") d++;
    if (sql[i] === ")" && --d === 0) return sql.slice(open + 1, i);
  }
  return sql.slice(open + 1);
}

/**
 * Problems of one statement: one line per reference to a table of `tables` in schema `schema`
 * (as written in the text, e.g. `"public"`) that a router planner could not prune to one shard.
 */
export function threadFilterProblems(
  sqlText: string,
  options: { schema: string; tables: ReadonlySet<string>; param?: ParamPattern },
): string[] {
  const param = options.param ?? POSITIONAL;
  const sql = blank(sqlText);
  const d = depths(sql);
  const problems: string[] = [];
  const schema = options.schema.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const ref = new RegExp(`${schema}\\.(\\w+)\\b`, "g");
  for (const m of sql.matchAll(ref)) {
    const table = m[1]!;
    if (!options.tables.has(table)) continue;
    const at = m.index;
    const before = sql.slice(0, at).trimEnd();
    const keyword = /(\w+|,)$/.exec(before)?.[1]?.toLowerCase() ?? "";
    const after = sql.slice(at + m[0].length);
    const aliasMatch = /^\s+(?:as\s+)?(\w+)/i.exec(after);
    const alias =
      aliasMatch && !KEYWORDS.has(aliasMatch[1]!.toLowerCase()) ? aliasMatch[1] : undefined;
    const where = `${table}${alias ? ` ${alias}` : ""} at ${at}`;
    if (keyword === "into") {
      const problem = insertProblem(sql, at + m[0].length, param);
      if (problem) problems.push(`INSERT INTO ${where}: ${problem}`);
      continue;
    }
    if (!["from", "join", "update", "using", ","].includes(keyword)) {
      problems.push(`${where}: not a FROM/JOIN/UPDATE/USING/INTO reference ("${keyword}")`);
      continue;
    }
    const level = levelText(sql, d, at);
    const col = alias ? `${alias}\\.thread_id` : `(?:${table}\\.)?thread_id`;
    const filter = new RegExp(`(?<![\\w.])${col}\\s*=\\s*${param}\\b|${param}\\s*=\\s*${col}\\b`);
    if (!filter.test(level)) {
      problems.push(`${where}: no ${alias ? `${alias}.` : ""}thread_id = <param> at its level`);
    } else if (/\bor\b/i.test(level)) {
      problems.push(`${where}: OR beside the thread_id filter`);
    }
  }
  return problems;
}

/** Whether the INSERT whose target ends at `from` takes thread_id from a parameter. */
function insertProblem(sql: string, from: number, param: ParamPattern): string | undefined {
  const open = sql.indexOf("(", from);
  const between = sql.slice(from, open);
  if (open < 0 || !/^\s*(?:as\s+\w+\s*)?$/i.test(between)) return "no column list";
  const columns = splitTop(group(sql, open)).map((c) => c.toLowerCase());
  const index = columns.indexOf("thread_id");
  if (index < 0) return "thread_id not among the inserted columns";
  const rest = sql.slice(open + group(sql, open).length + 2);
  const source = /^\s*(select|values)\b/i.exec(rest);
  if (!source) return "neither SELECT nor VALUES";
  let list: string;
  if (source[1]!.toLowerCase() === "values") {
    const valuesOpen = rest.indexOf("(");
    list = group(rest, valuesOpen);
    if (/^\s*,\s*\(/.test(rest.slice(valuesOpen + list.length + 2))) return "several VALUES rows";
  } else {
    const body = rest.slice(source[0].length);
    const end = /\bfrom\b/i.exec(body);
    list = end ? body.slice(0, end.index) : body;
  }
  const value = splitTop(list)[index] ?? "";
  return new RegExp(`^${param}(?:::\\w+)?$`).test(value)
    ? undefined
    : `thread_id comes from "${value}", not a parameter`;
}

/** The statements of a function body from pg_get_functiondef (between the dollar quotes). */
export function functionBody(definition: string): string {
  const m = /\$(\w*)\$([\s\S]*)\$\1\$/.exec(definition);
  return m ? m[2]! : definition;
}
