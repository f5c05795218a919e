import { type ChildProcess, fork } from "node:child_process";
import { once } from "node:events";

/**
 * A forked benchmark child (bench/load-child.ts, bench/agent-server-child.ts; decision H31) and
 * its next IPC message.
 */
export interface Child {
  process: ChildProcess;
  /** The child's next IPC message. */
  next: <T>() => Promise<T>;
  /** Sends `{ type: "stop" }` and waits for the exit (no-op once it exited). */
  stop: () => Promise<void>;
}

/** Where a child started with `profile` writes its `--cpu-prof` file (git-ignored). */
export const PROFILE_DIR = ".prof";

/**
 * Forks `file` with `--import tsx` and an IPC channel (stdout and stderr inherited); with
 * `profile`, under `--cpu-prof` into {@link PROFILE_DIR}.
 */
export function forkChild(file: string, args: string[], profile: boolean): Child {
  const execArgv = ["--import", "tsx"];
  if (profile) execArgv.push("--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`);
  const child = fork(file, args, { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const next = <T>() =>
    new Promise<T>((resolve, reject) => {
      const onExit = (code: number | null) =>
        reject(new Error(`${file} ${args.join(" ")} exited (${String(code)})`));
      child.once("exit", onExit);
      child.once("message", (message) => {
        child.off("exit", onExit);
        resolve(message as T);
      });
    });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.send({ type: "stop" });
    await exited;
  };
  return { process: child, next, stop };
}
