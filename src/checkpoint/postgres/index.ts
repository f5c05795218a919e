export {
  PostgresCheckpointer,
  type PostgresCheckpointerOptions,
  type FromConnStringOptions,
} from "./saver.js";
