import { PreflightError } from "@hsdo/core";
import type { CommonArgs, Out } from "./common.ts";

export async function runCommand(args: CommonArgs & { server?: boolean; client?: boolean }, _out: Out): Promise<number> {
  if (!args.server && !args.client) throw new PreflightError("say what to run: --server, --client, or both (see `hsdo --help`)");
  throw new PreflightError("not implemented yet");
}
