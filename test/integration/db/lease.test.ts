import { ClientLease } from "../../../src/db/lease.js";
import { requirePostgres, testPool } from "../../helpers/db.js";

const idle = () => new Promise((r) => setImmediate(r));

beforeAll(requirePostgres);

describe("ClientLease", () => {
  it("sends a query synchronously on a client it holds, where pool.query waits for a tick", async () => {
    const pool = testPool(2);
    const streams: Array<{ bytesWritten: number }> = [];
    pool.on("connect", (client) => {
      streams.push(
        (client as unknown as { connection: { stream: { bytesWritten: number } } }).connection
          .stream,
      );
    });
    const lease = new ClientLease(pool);
    try {
      await lease.query({ text: "SELECT 1" });
      expect(lease.held).toBe(1);
      const stream = streams[0]!;
      const before = stream.bytesWritten;
      const viaLease = lease.query({ text: "SELECT 2" });
      expect(stream.bytesWritten).toBeGreaterThan(before);
      await viaLease;
      await idle();
      // The pool's own path: nothing is written until process.nextTick runs.
      const total = () => streams.reduce((n, s) => n + s.bytesWritten, 0);
      const beforePool = total();
      const viaPool = pool.query("SELECT 3");
      expect(total()).toBe(beforePool);
      await viaPool;
    } finally {
      await idle();
      await pool.end();
    }
  });

  it("gives its clients back to the pool once the event loop is idle", async () => {
    const pool = testPool(3);
    const lease = new ClientLease(pool);
    try {
      await Promise.all([1, 2, 3].map((n) => lease.query({ text: "SELECT $1::int", values: [n] })));
      expect(lease.held).toBeGreaterThan(0);
      await idle();
      expect(lease.held).toBe(0);
      expect(pool.idleCount).toBe(pool.totalCount);
    } finally {
      await pool.end();
    }
  });

  it("keeps a client after an SQL error and discards one whose backend was terminated", async () => {
    const pool = testPool(2);
    const admin = testPool(1);
    const lease = new ClientLease(pool);
    try {
      await expect(lease.query({ text: "SELECT 1/0" })).rejects.toMatchObject({ code: "22012" });
      expect(lease.held).toBe(1);
      const { rows } = await lease.query<{ pid: number }>({
        text: "SELECT pg_backend_pid() AS pid",
      });
      // Terminated while the lease holds it idle: no uncaught 'error', the client is dropped.
      await admin.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
      await new Promise((r) => setTimeout(r, 100));
      expect(lease.held).toBe(0);
      const again = await lease.query<{ pid: number }>({ text: "SELECT pg_backend_pid() AS pid" });
      expect(again.rows[0]!.pid).not.toBe(rows[0]!.pid);
    } finally {
      await idle();
      await pool.end();
      await admin.end();
    }
  });
});
