import net from "node:net";

/** How a cut proxy treats connections. */
export type CutMode =
  /** Stop listening: new connections get ECONNREFUSED (a stopped server). */
  | "refuse"
  /** Accept and close at once: "Connection terminated unexpectedly" (a crashing server). */
  | "reset"
  /** Accept and never answer: connect timeouts (a black-holed network). */
  | "hold";

/**
 * A TCP proxy the tests put between a client and Postgres, to cause real network faults:
 * `cut()` destroys every open connection and refuses (or resets, or holds) new ones until
 * `restore()`. No mocks: the client sees exactly the socket errors of a real outage.
 */
export class TcpProxy {
  private server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly held = new Set<net.Socket>();
  private mode: CutMode | undefined;
  private closed = false;

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
    server: net.Server,
  ) {
    this.server = server;
  }

  /** Starts a proxy on a free local port forwarding to `target` (default 127.0.0.1:5432). */
  static async start(target = { host: "127.0.0.1", port: 5432 }, port = 0): Promise<TcpProxy> {
    const holder: { proxy?: TcpProxy } = {};
    const server = net.createServer((socket) => holder.proxy?.accept(socket));
    await listen(server, port);
    const address = server.address() as net.AddressInfo;
    holder.proxy = new TcpProxy(address.port, target, server);
    return holder.proxy;
  }

  /** A connection string to the test database through the proxy. */
  url(databaseUrl: string): string {
    const u = new URL(databaseUrl);
    u.hostname = "127.0.0.1";
    u.port = String(this.port);
    return u.toString();
  }

  /** True while cut. */
  get isCut(): boolean {
    return this.mode !== undefined;
  }

  /** Open client connections (forwarded ones). */
  get connections(): number {
    return this.sockets.size;
  }

  private accept(client: net.Socket): void {
    client.on("error", () => undefined);
    if (this.mode === "reset" || this.closed) {
      client.destroy();
      return;
    }
    if (this.mode === "hold") {
      this.held.add(client);
      client.on("close", () => this.held.delete(client));
      return;
    }
    const upstream = net.connect(this.target.port, this.target.host);
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
    client.on("close", () => {
      upstream.destroy();
      this.sockets.delete(client);
    });
    upstream.on("close", () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
    this.sockets.add(client);
  }

  /** Destroys every connection and refuses/resets/holds new ones until restore(). */
  async cut(mode: CutMode = "refuse"): Promise<void> {
    if (this.mode !== undefined) return;
    this.mode = mode;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (mode === "refuse") await closeServer(this.server);
  }

  /** Accepts and forwards connections again. */
  async restore(): Promise<void> {
    const mode = this.mode;
    if (mode === undefined) return;
    this.mode = undefined;
    for (const s of this.held) s.destroy();
    this.held.clear();
    if (mode === "refuse") {
      this.server = net.createServer((socket) => this.accept(socket));
      await listen(this.server, this.port);
    }
  }

  /** Stops the proxy and drops every connection. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of [...this.sockets, ...this.held]) s.destroy();
    this.sockets.clear();
    this.held.clear();
    if (this.mode !== "refuse") await closeServer(this.server);
  }
}

function listen(server: net.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
