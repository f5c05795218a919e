export {
  PostgresCheckpointer,
  type PostgresCheckpointerOptions,
  type FromConnStringOptions,
} from "./postgres.js";
