import type { ConfigFlags } from "../load-config.ts";

export interface CommonArgs extends ConfigFlags {
  "dry-run"?: boolean;
  dryRun?: boolean;
  once?: boolean;
}

export type Out = (s: string) => void;
