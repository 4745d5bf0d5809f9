import { haproxyConfigLines } from "@hsdo/client";
import { loadConfig } from "../load-config.ts";
import type { CommonArgs, Out } from "./common.ts";

/** `hsdo haproxy-config`: the HAProxy lines that match this configuration's backends and size. */
export async function haproxyConfigCommand(args: CommonArgs, out: Out): Promise<number> {
  const { config } = loadConfig(args);
  out(haproxyConfigLines({ size: config.size, client: { socket: config.client.socket, serverStateFile: config.client.serverStateFile, backends: config.client.backends } }));
  return 0;
}
