/**
 * The logging surface Threadline's library code needs: a subset of pino's, so a pino logger can be
 * passed in as is. The library never writes to the console; without a logger it stays silent.
 */
export interface Logger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

const noop = () => undefined;

/** A logger that drops everything; the default for library use. */
export const silentLogger: Logger = { error: noop, warn: noop, info: noop, debug: noop };
