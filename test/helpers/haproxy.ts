import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { haproxyBinary } from "../../scripts/haproxy-preflight.mjs";
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
  /** Stops and starts HAProxy again from the same config (servers back to their template state). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface HaproxyOptions {
  /** Sections after global/defaults (backends, frontends). */
  body: string;
  /** Extra lines for the global section. */
  global?: string[];
}

/** `backend <name>` with `server-template <prefix> 1-<count>` parked at 127.0.0.2, disabled, as hsdo expects. */
export function templateBackend(name: string, prefix: string, count: number, extra: string[] = []): string {
  return [
    `backend ${name}`,
    "    balance roundrobin",
    ...extra.map((l) => `    ${l}`),
    `    server-template ${prefix} 1-${count} 127.0.0.2:80 disabled`,
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
    "",
    opts.body,
    "",
  ].join("\n");
  writeFileSync(configPath, config);

  const launch = async (): Promise<Proc> => {
    const proc = startProc("haproxy", haproxyBinary(), ["-db", "-f", configPath]);
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
    async stop() {
      await handle.proc.stop("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return handle;
}
