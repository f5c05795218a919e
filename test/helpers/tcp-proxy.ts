import net from "node:net";

/** How a cut proxy treats connections. */
export type CutMode =
  /** Stop listening: new connections get ECONNREFUSED (a stopped server). */
  | "refuse"
  /** Accept and close at once: "Connection terminated unexpectedly" (a crashing server). */
  | "reset"
  /** Accept and never answer: connect timeouts (a black-holed network). */
  | "hold";

/** A forwarded connection: the client's socket and the one to the target. */
interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

/**
 * A TCP proxy the tests put between a client and Postgres, to cause real network faults:
 * `cut()` destroys every open connection and refuses (or resets, or holds) new ones until
 * `restore()`; `blackHole()` keeps every socket open but silently drops all data, as a network
 * that lost its NAT or firewall state does, until `heal()`. No mocks: the client sees exactly
 * the socket behaviour of a real outage.
 */
export class TcpProxy {
  private server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly pairs = new Set<Pair>();
  private readonly held = new Set<net.Socket>();
  /** Sockets whose data is dropped: they never carry a byte again, even after heal(). */
  private readonly holed = new Set<net.Socket>();
  private mode: CutMode | undefined;
  private blackHoled = false;
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

  /** True while black-holed. */
  get isBlackHoled(): boolean {
    return this.blackHoled;
  }

  /** Sockets that were black-holed and are still open (the peer has not given up on them). */
  get deadConnections(): number {
    return this.holed.size;
  }

  private accept(client: net.Socket): void {
    client.on("error", () => undefined);
    if (this.mode === "reset" || this.closed) {
      client.destroy();
      return;
    }
    if (this.blackHoled) {
      this.swallow(client);
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
    const pair = { client, upstream };
    this.pairs.add(pair);
    client.on("close", () => this.pairs.delete(pair));
  }

  /** Keeps a socket open and discards whatever arrives on it; nothing is ever sent back. */
  private swallow(socket: net.Socket): void {
    socket.on("error", () => undefined);
    socket.on("data", () => undefined);
    this.holed.add(socket);
    socket.on("close", () => this.holed.delete(socket));
  }

  /**
   * Drops every byte in both directions on all open connections, and accepts new connections
   * only to drop their bytes too (a connect then times out during the handshake). Nothing is
   * closed or reset: only client-side timeouts can tell. The connections open now stay dead
   * after heal(), as flows a NAT forgot do.
   */
  blackHole(): void {
    if (this.blackHoled) return;
    this.blackHoled = true;
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      this.swallow(client);
      this.swallow(upstream);
      this.sockets.delete(client);
    }
    this.pairs.clear();
  }

  /** New connections are forwarded again; the ones black-holed stay dead until their peer closes them. */
  heal(): void {
    this.blackHoled = false;
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
    for (const s of [...this.sockets, ...this.held, ...this.holed]) s.destroy();
    this.sockets.clear();
    this.held.clear();
    this.holed.clear();
    this.pairs.clear();
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
