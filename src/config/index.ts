export { loadConfig, envNameFor, type LoadConfigOptions } from "./load.js";
export {
  configSchema,
  schemaName,
  SCHEMA_NAME_RE,
  type ThreadlineConfig,
  type ThreadlineConfigInput,
} from "./schema.js";
export { parseDuration, toPgInterval } from "./duration.js";
