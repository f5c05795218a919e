import net from "node:net";

/**
 * A tiny stand-in for a PgBouncer that refuses a startup parameter: it reads the client's startup
 * message and answers with the same ErrorResponse PgBouncer sends
 * (`FATAL 08P01 unsupported startup parameter: <name>`), then closes. Real sockets, real pg
 * client on the other side; it only speaks the first message of the protocol.
 */
export class RefusingPooler {
  /** Startup messages received (one per connection attempt). */
  attempts = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(parameter = "statement_timeout"): Promise<RefusingPooler> {
    const holder: { pooler?: RefusingPooler } = {};
    const server = net.createServer((socket) => {
      socket.on("error", () => undefined);
      let buffered = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 8) {
          const length = buffered.readInt32BE(0);
          if (buffered.length < length) return;
          const code = buffered.readInt32BE(4);
          buffered = buffered.subarray(length);
          if (code === 80877103 || code === 80877104) {
            socket.write("N"); // SSLRequest / GSSENCRequest: not supported, go on in plain text
            continue;
          }
          if (holder.pooler) holder.pooler.attempts += 1;
          socket.end(errorResponse(`unsupported startup parameter: ${parameter}`));
          return;
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as net.AddressInfo;
    holder.pooler = new RefusingPooler(server, port);
    return holder.pooler;
  }

  /** A connection string pointing at this fake pooler. */
  get url(): string {
    return `postgres://app@127.0.0.1:${this.port}/app`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A protocol v3 ErrorResponse with severity FATAL and SQLSTATE 08P01. */
function errorResponse(message: string): Buffer {
  const fields = Buffer.concat([
    field("S", "FATAL"),
    field("V", "FATAL"),
    field("C", "08P01"),
    field("M", message),
    Buffer.from([0]),
  ]);
  const header = Buffer.alloc(5);
  header.write("E", 0, "ascii");
  header.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([header, fields]);
}

function field(type: string, value: string): Buffer {
  return Buffer.concat([Buffer.from(type, "ascii"), Buffer.from(value, "utf8"), Buffer.from([0])]);
}
