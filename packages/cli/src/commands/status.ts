import { PreflightError } from "@hsdo/core";
import type { CommonArgs, Out } from "./common.ts";

export async function statusCommand(_args: CommonArgs & { json?: boolean }, _out: Out): Promise<number> {
  throw new PreflightError("not implemented yet");
}
