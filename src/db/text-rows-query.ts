import pg from "pg";

/** One row as Postgres sent it: each column's text (the text format), or null. */
export type TextRow = Array<string | null>;

/**
 * A statement for the hot path whose rows come back as the columns' text, in select order,
 * without the per-call work `pg` does for a query config (decision H47):
 *
 * - `client.query(config)` copies every config object through `Object.getOwnPropertyDescriptors`
 *   and `Object.defineProperties` (about 10 µs each here); this query starts from the text,
 *   which `pg` takes as is, and sets the statement's name on the instance;
 * - for every RowDescription `pg` builds a type parser list and a null-prototype row template,
 *   and copies the template into an object per row (about 20 µs for the 12 columns of a read);
 *   here a row is the array of column texts `pg`'s protocol parser already made, and the caller,
 *   which knows its columns, converts the few that are not text.
 *
 * Everything else is `pg.Query`'s: Parse only on a connection that has not prepared the name,
 * Bind, Describe, Execute and Sync in one corked write, errors, `query_timeout`. Results are
 * always in the text format (a client configured with `binary: true` does not change that).
 */
class TextRowsQuery extends pg.Query {
  /** Read by `pg` (submit, ParseComplete); set once, before the query is submitted. */
  declare name: string | undefined;
  /** Not `rows`: `pg.Query` reads that as its rows-per-execute limit. */
  readonly collected: TextRow[] = [];

  // `pg.Query`'s constructor assigns the client's `binary` setting; the rows here are text.
  get binary(): boolean {
    return false;
  }
  set binary(_value: boolean) {
    // always text: see the class comment
  }

  /** The columns are the caller's to read; no parsers, no row template. */
  handleRowDescription(): void {}

  handleDataRow(msg: { fields: TextRow }): void {
    this.collected.push(msg.fields);
  }
}

/**
 * Runs one statement on `client` and resolves with its rows as column texts (see
 * {@link TextRowsQuery}); `name` makes it a named prepared statement, parsed once per
 * connection. Rejects with `pg`'s own errors (`DatabaseError` with its SQLSTATE `code`).
 */
export function queryTextRows(
  client: pg.ClientBase,
  name: string | undefined,
  text: string,
  values: unknown[],
): Promise<TextRow[]> {
  return new Promise((resolve, reject) => {
    const query: TextRowsQuery = new TextRowsQuery(text, values, (err) => {
      if (err) reject(err);
      else resolve(query.collected);
    });
    if (name !== undefined) query.name = name;
    void client.query(query);
  });
}
