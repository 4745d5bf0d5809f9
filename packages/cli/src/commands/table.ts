import { PreflightError } from "@hsdo/core";
import type { CommonArgs, Out } from "./common.ts";

export async function tableCreateCommand(_args: CommonArgs, _out: Out): Promise<number> {
  throw new PreflightError("not implemented yet");
}
