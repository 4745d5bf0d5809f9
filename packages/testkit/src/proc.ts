import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";

/**
 * A child process started by a test. Every one is registered so that it is
 * killed by PID when the test process exits, even after a failed assertion.
 */
export interface Proc {
  child: ChildProcess;
  pid: number;
  name: string;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited: Promise<number | string>;
  running(): boolean;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  signal(sig: NodeJS.Signals): void;
}

const live = new Set<Proc>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const killAll = () => {
    for (const p of live) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
  };
  process.on("exit", killAll);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

export function startProc(name: string, cmd: string, args: string[], options: SpawnOptions = {}): Proc {
  hookExit();
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    child.on("exit", (code, sig) => {
      running = false;
      live.delete(proc);
      resolve(code ?? sig ?? "unknown");
    });
  });
  const proc: Proc = {
    child,
    pid: child.pid,
    name,
    output: () => out,
    exited,
    running: () => running,
    signal(sig) {
      if (running) process.kill(child.pid!, sig);
    },
    async stop(signal = "SIGTERM", graceMs = 5000) {
      if (!running) return;
      try {
        process.kill(child.pid!, "SIGCONT");
        process.kill(child.pid!, signal);
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(child.pid!, "SIGKILL");
        } catch {
          /* gone */
        }
      }, graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  live.add(proc);
  return proc;
}
