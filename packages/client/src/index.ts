// The client side of hsdo: from a pool's slots to HAProxy servers, through the Runtime API.
export {
  RuntimeApi,
  parseSocketAddress,
  chunkCommands,
  DEFAULT_BATCH_BYTES,
  DEFAULT_TIMEOUT_MS,
  type BatchAnswer,
  type RuntimeSender,
  type RuntimeApiOptions,
  type SocketAddress,
} from "./runtime-api.ts";
export { formatCommand, commandSucceeded, checkAnswer, type AnswerCheck, type AnswerOutcome, type RuntimeCommand, type ServerState } from "./commands.ts";
export {
  parseServersState,
  ADMIN_FLAGS,
  type ActualServer,
  type AdminFlag,
  type OpState,
} from "./servers-state.ts";
export {
  desiredServers,
  selects,
  portOmissions,
  checkPortOmissions,
  type DesiredServer,
  type SetServer,
  type KeptServer,
  type ClientIdentity,
} from "./desired.ts";
export { plan, canonicalIp, type Plan } from "./plan.ts";
export { applyCommands, type CommandResult } from "./apply.ts";
export {
  Reconciler,
  type ReconcilerOptions,
  type ReconcileResult,
  type ReconcileObserver,
  type FailedCommand,
  type KeptEntry,
  STATIC_LB_REFUSAL,
  staticAlgorithmFix,
} from "./reconcile.ts";
export { saveSnapshot, loadSnapshot, cacheFile, type CacheLoad } from "./cache.ts";
export { preflight, preflightWhenUp, HaproxyAbsentError, type PreflightOptions, type PreflightReport, type WaitOptions } from "./preflight.ts";
export { haproxyConfigLines, parseHaproxyVersion, templateLine, PLACEHOLDER_ADDR, type HaproxyConfigInput } from "./haproxy-config.ts";
export { readAvailabilityZone, IMDS_BASE_URL, type ImdsOptions } from "./imds.ts";
export { ClientAgent, type ClientAgentOptions, type ClientTickResult, type PoolStatus, type SnapshotPoller } from "./agent.ts";
