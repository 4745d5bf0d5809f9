import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startProc, type Proc } from "./proc.ts";

export const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
export const HSDO_BIN = `${ROOT}packages/cli/bin/hsdo.js`;

/** A clean environment: no HSDO/AWS variables of the developer's shell leak into a test. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (/^(HSDO_|AWS_|SERVER_|CLIENT_|CONSUL_)/.test(k)) continue;
    if (["INTERVAL", "DEBUG", "EXPORTER_PORT", "DYNAMODB_TABLE_NAME", "HAPROXY_BACKEND_SERVERS_LIST_SIZE", "NODE_OPTIONS", "NODE_TEST_CONTEXT"].includes(k)) continue;
    env[k] = v;
  }
  // No test writes the default server-state file (/var/lib/hsdo): those that test it name their own.
  return { ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", HSDO_CLIENT_SERVER_STATE_FILE: "", ...extra };
}

export interface HsdoResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `hsdo <args>` to completion (bounded by timeoutMs), in `cwd` (default: a directory without conf/). */
export function runHsdo(args: string[], env: Record<string, string> = {}, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<HsdoResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HSDO_BIN, ...args], { cwd: opts.cwd ?? "/tmp", env: cleanEnv(env) });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`hsdo ${args.join(" ")} did not finish in ${opts.timeoutMs ?? 30_000} ms\n${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts a long-running `hsdo` (server, client) as a tracked child process. */
export function startHsdo(name: string, args: string[], env: Record<string, string> = {}, cwd = "/tmp"): Proc {
  return startProc(name, process.execPath, [HSDO_BIN, ...args], { cwd, env: cleanEnv(env) });
}
