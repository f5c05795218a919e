import { createHash } from "node:crypto";
import type pg from "pg";

/** 26000 "prepared statement does not exist", 42P05 "prepared statement already exists". */
function isPreparedStatementMismatch(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "26000" || code === "42P05";
}

/**
 * Sends the statements of the run queue and the thread store as named prepared statements, so
 * Postgres parses and plans each (the queue's are CTEs of several tables) once per connection
 * rather than on every run (decision H30). Texts are built once per schema, so a name is the hash
 * of its text. As in the checkpointer, `preparedStatements: false` (database.preparedStatements)
 * sends them unnamed, and a transaction-mode pooler detected by 26000 / 42P05 (nothing ran: the
 * error comes from Parse or Bind) switches to unnamed for good and retries once. Statements of
 * an explicit transaction go unnamed: such an error there would abort the transaction, so the
 * retry could not run.
 */
export class RunStatements {
  private readonly names = new Map<string, string>();

  constructor(private prepared = true) {}

  /** Whether statements are still sent named. */
  get usesPreparedStatements(): boolean {
    return this.prepared;
  }

  private nameOf(text: string): string {
    let name = this.names.get(text);
    if (name === undefined) {
      name = `tlr_${createHash("sha1").update(text).digest("hex").slice(0, 20)}`;
      this.names.set(text, name);
    }
    return name;
  }

  /** Sends `text`; named when `named` (a statement of its own, not inside a transaction). */
  async query<R extends pg.QueryResultRow>(
    client: pg.Pool | pg.PoolClient,
    text: string,
    values: unknown[],
    named = true,
  ): Promise<pg.QueryResult<R>> {
    if (!this.prepared || !named) return client.query<R>({ text, values });
    try {
      return await client.query<R>({ name: this.nameOf(text), text, values });
    } catch (err) {
      if (!isPreparedStatementMismatch(err)) throw err;
      this.prepared = false;
      return client.query<R>({ text, values });
    }
  }
}
