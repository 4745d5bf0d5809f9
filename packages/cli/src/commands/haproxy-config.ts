import { RuntimeApi, haproxyConfigLines } from "@hsdo/client";
import { loadConfig } from "../load-config.ts";
import type { CommonArgs, Out } from "./common.ts";

export interface HaproxyConfigArgs extends CommonArgs {
  "haproxy-version"?: string;
}

/** `Version` from `show info` when the socket answers within a second; undefined otherwise (no socket, not running). */
async function runningVersion(socket: string | undefined): Promise<string | undefined> {
  if (!socket) return undefined;
  try {
    const info = await new RuntimeApi({ socket, timeoutMs: 1000 }).run("show info");
    return info.ok ? /^Version: (\S+)/m.exec(info.text)?.[1] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `hsdo haproxy-config`: the HAProxy lines that match this configuration's
 * backends and size, with advice for the HAProxy version given by
 * --haproxy-version, else the one client.socket runs, else marked by version.
 */
export async function haproxyConfigCommand(args: HaproxyConfigArgs, out: Out): Promise<number> {
  const { config } = loadConfig(args);
  const haproxyVersion = args["haproxy-version"] || (await runningVersion(config.client.socket));
  out(
    haproxyConfigLines({
      size: config.size,
      client: { socket: config.client.socket, serverStateFile: config.client.serverStateFile, backends: config.client.backends },
      ...(haproxyVersion ? { haproxyVersion } : {}),
    }),
  );
  return 0;
}
