import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { templateLine } from "@hsdo/client";
import { haproxyBinary } from "../../../scripts/haproxy-preflight.mjs";

// The test bed's HAProxy, as the preflight of `npm test` found it.
export { haproxyAtLeast, haproxyBinary, haproxyVersion } from "../../../scripts/haproxy-preflight.mjs";
import { startProc, type Proc } from "./proc.ts";
import { waitFor } from "./wait.ts";

/** A real HAProxy ($HSDO_TEST_HAPROXY, else Debian's package on PATH) with an admin Runtime API socket in a temp dir. */
export interface HaproxyHandle {
  dir: string;
  socket: string;
  configPath: string;
  proc: Proc;
  /** Sends one raw command line and returns the whole answer. */
  command(line: string): Promise<string>;
  /** Stops and starts HAProxy again from the same config (servers back to their template state, or the state file's). */
  restart(): Promise<void>;
  /**
   * masterWorker only: what `systemctl reload haproxy` does (SIGUSR2 to the
   * master), then waits until a new worker answers on the socket; returns its pid.
   */
  reload(): Promise<string>;
  /** The pid of the process answering on the socket (`show info`). */
  workerPid(): Promise<string>;
  stop(): Promise<void>;
}

export interface HaproxyOptions {
  /** Sections after global/defaults (backends, frontends). */
  body: string;
  /** Extra lines for the global section. */
  global?: string[];
  /** Extra lines for the defaults section. */
  defaults?: string[];
  /** Run as master-worker (-W), as systemd units do, so that reload() is a real seamless reload. */
  masterWorker?: boolean;
}

/** `backend <name>` with the `server-template` line `hsdo haproxy-config` prints (parked, disabled), without health checks. */
export function templateBackend(name: string, prefix: string, count: number, extra: string[] = []): string {
  return [
    `backend ${name}`,
    "    balance roundrobin",
    ...extra.map((l) => `    ${l}`),
    `    ${templateLine({ prefix }, count).replace(/ check$/, "")}`,
    "",
  ].join("\n");
}

export function rawCommand(socket: string, line: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let data = "";
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`no answer from ${socket} to ${line} within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.on("connect", () => conn.write(`${line}\n`));
    conn.on("data", (d) => {
      data += d.toString();
    });
    conn.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    conn.on("close", () => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}

export async function startHaproxy(opts: HaproxyOptions): Promise<HaproxyHandle> {
  const dir = mkdtempSync(join(tmpdir(), "hsdo-haproxy-"));
  const socket = join(dir, "admin.sock");
  const masterSocket = join(dir, "master.sock");
  const configPath = join(dir, "haproxy.cfg");
  const config = [
    "global",
    `    stats socket ${socket} mode 600 level admin`,
    "    stats timeout 10s",
    ...(opts.global ?? []).map((l) => `    ${l}`),
    "",
    "defaults",
    "    mode http",
    "    timeout connect 1s",
    "    timeout client 5s",
    "    timeout server 5s",
    ...(opts.defaults ?? []).map((l) => `    ${l}`),
    "",
    opts.body,
    "",
  ].join("\n");
  writeFileSync(configPath, config);

  const launch = async (): Promise<Proc> => {
    const proc = startProc("haproxy", haproxyBinary(), [...(opts.masterWorker ? ["-W", "-S", masterSocket] : []), "-db", "-f", configPath]);
    await waitFor(
      `haproxy socket ${socket}`,
      async () => {
        if (!proc.running()) throw new Error(`haproxy exited: ${proc.output()}`);
        return (await rawCommand(socket, "show info", 1000)).includes("Name: HAProxy");
      },
      { timeoutMs: 10_000 },
    );
    return proc;
  };

  const handle: HaproxyHandle = {
    dir,
    socket,
    configPath,
    proc: await launch(),
    command: (line) => rawCommand(socket, line),
    async restart() {
      await handle.proc.stop("SIGTERM");
      handle.proc = await launch();
    },
    async workerPid() {
      const pid = /^Pid: (\d+)$/m.exec(await rawCommand(socket, "show info", 2000))?.[1];
      if (!pid) throw new Error("show info names no Pid");
      return pid;
    },
    async reload() {
      if (!opts.masterWorker) throw new Error("reload() needs masterWorker: true");
      const before = await handle.workerPid();
      process.kill(handle.proc.pid, "SIGUSR2");
      // Done when the new worker answers and the master's own CLI lists it as the current worker:
      // the master is back in its loop (what systemd's Type=notify waits for); a signal sent
      // during its re-exec is lost.
      return waitFor(
        "a new HAProxy worker after SIGUSR2",
        async () => {
          if (!handle.proc.running()) throw new Error(`haproxy master exited: ${handle.proc.output()}`);
          const pid = await handle.workerPid();
          // The master CLI keeps its connection open: quit ends it.
          const procs = await rawCommand(masterSocket, "show proc\nquit", 2000);
          const current = /# workers\n(\d+)\s+worker/.exec(procs)?.[1];
          if (pid !== before && current === pid) return pid;
          throw new Error(`worker ${pid} (was ${before}), master lists ${current}; HAProxy said: ${handle.proc.output().slice(-1500)}`);
        },
        { timeoutMs: 15_000 },
      );
    },
    async stop() {
      await handle.proc.stop("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return handle;
}
