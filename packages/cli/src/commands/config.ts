import { checkClientConfig, checkServerConfig, configRows, formatConfigRows } from "@hsdo/core";
import { loadConfig } from "../load-config.ts";
import type { CommonArgs, Out } from "./common.ts";

export async function configCommand(args: CommonArgs & { json?: boolean; server?: boolean; client?: boolean }, out: Out): Promise<number> {
  const resolved = loadConfig(args);
  if (args.server) checkServerConfig(resolved);
  if (args.client) checkClientConfig(resolved);
  const rows = configRows(resolved);
  if (args.json) out(`${JSON.stringify(rows, null, 2)}\n`);
  else out(`${formatConfigRows(rows)}\n`);
  return 0;
}
