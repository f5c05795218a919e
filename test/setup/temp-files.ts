import { afterAll } from "vitest";
import { removeTempDirs } from "../helpers/tmp.js";

// Every test file: what tempDir() made is removed once the file's tests are done.
afterAll(removeTempDirs);
