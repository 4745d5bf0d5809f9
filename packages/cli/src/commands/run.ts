import { hostname } from "node:os";
import {
  ConfigError,
  PreflightError,
  checkClientConfig,
  checkServerConfig,
  errorMessage,
  normalizeSlots,
  systemClock,
  type Config,
  type Logger,
  type ResolvedConfig,
  type Snapshot,
} from "@hsdo/core";
import { FencedWriter, LeaseKeeper, SlotReader } from "@hsdo/store";
import { Server } from "@hsdo/server";
import { ClientAgent, Reconciler, RuntimeApi, checkPortOmissions, preflight, preflightWhenUp, readAvailabilityZone } from "@hsdo/client";
import { loadConfig } from "../load-config.ts";
import { createLogger, levelOf, type LevelControl } from "../logger.ts";
import { Metrics } from "../metrics.ts";
import { buildInfo } from "../build-info.ts";
import { startHttp, type Readiness } from "../http.ts";
import { checkDynamoTable, dynamoFailure, openDynamo, type DynamoHandle } from "../dynamo.ts";
import { buildSource } from "../sources.ts";
import { recordClientTick, recordServerTick } from "../recorders.ts";
import { printClientDryRun, printDryRun } from "../dry-run.ts";
import type { CommonArgs, Out } from "./common.ts";

export interface RunArgs extends CommonArgs {
  server?: boolean;
  client?: boolean;
}

/**
 * `hsdo --server`, `hsdo --client`, or both: the composition root. Builds
 * the clients, the loops and the HTTP endpoints, and runs until SIGINT or
 * SIGTERM (or one tick with --once).
 */
export async function runCommand(args: RunArgs, out: Out): Promise<number> {
  if (!args.server && !args.client) throw new PreflightError("say what to run: --server, --client, or both (see `hsdo --help`)");
  const resolved = loadConfig(args);
  if (args.server) checkServerConfig(resolved);
  if (args.client) checkClientConfig(resolved);
  const config = resolved.config;
  const dryRun = Boolean(args["dry-run"] ?? args.dryRun);
  const once = Boolean(args.once);
  const level: LevelControl = { level: levelOf(config) };
  const log = createLogger({ level });
  const metrics = new Metrics();
  if (args.server) metrics.initServer({ pool: config.pool, source: config.server.mode });
  if (args.client) metrics.initClient({ backends: config.client.backends.map((b) => b.name) });
  const stop = new AbortController();
  const onSignal = (sig: string) => {
    log.info("stopping", { signal: sig });
    stop.abort();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  // SIGHUP (Node's default: exit without a word) re-reads the configuration for the log level only: every other
  // key shapes clients, loops and HAProxy's backends built at start, so a change there needs a restart.
  const onHangup = () => {
    let next: ResolvedConfig;
    try {
      next = loadConfig(args);
    } catch (err) {
      log.warn("SIGHUP: the configuration cannot be read; nothing changed", { error: errorMessage(err) });
      return;
    }
    const was = level.level;
    level.level = levelOf(next.config);
    log.warn("SIGHUP: configuration re-read for the log level only (other changes need a restart)", { logLevel: level.level, was });
  };
  process.on("SIGHUP", onHangup);

  const cleanup: (() => Promise<void> | void)[] = [];
  try {
    const dynamo = await openDynamo(config, log, metrics.observeDynamo);
    cleanup.push(() => dynamo.close());
    let server: Awaited<ReturnType<typeof buildServer>> | undefined;
    let client: Awaited<ReturnType<typeof buildClient>> | undefined;

    // HTTP first: /healthz answers and /readyz says why not ready while the roles start (a black-holed DynamoDB included).
    if (!once && config.http.port !== 0) {
      const http = await startHttp({
        host: config.http.host,
        port: config.http.port,
        metrics,
        log,
        readiness: ({ strict }) =>
          mergeReadiness([
            args.server ? (server?.readiness() ?? { ready: false, reasons: ["server: starting"] }) : undefined,
            args.client ? (client?.agent.readiness({ strict }) ?? { ready: false, reasons: ["client: starting"] }) : undefined,
          ]),
      });
      // A scraper's keep-alive connection would otherwise hold the exit until it idles out.
      cleanup.push(() => new Promise<void>((resolve) => (http.close(() => resolve()), http.closeAllConnections())));
    }

    // A one-shot server must reach DynamoDB; a long-running process (and a client, which can fall back on its cache) warns and keeps trying.
    const mustReach = once && Boolean(args.server);
    const tableCheck = checkDynamoTable(dynamo, { mustReach, log, observe: metrics.observeDynamo });
    // Awaited below (server, --once) or watched as a role (client): never an unhandled rejection meanwhile.
    tableCheck.catch(() => undefined);
    if (args.server) {
      const reached = await tableCheck;
      if (reached) await checkSizeAgainstPool(resolved, dynamo, mustReach, log);
      server = await buildServer(config, dynamo, metrics, log.child({ role: "server" }), dryRun, out);
      cleanup.push(() => server?.close());
    }
    // A long-running client does not wait on DynamoDB to start: it restores HAProxy from its cache first;
    // a missing table still stops it. A one-shot run needs the table anyway, and says first what is wrong with it.
    if (args.client && once) await tableCheck;
    if (args.client) {
      // A missing table (exit 2) ends a wait for HAProxy's socket too: it needs the operator either way.
      const tableFailed = new AbortController();
      tableCheck.catch(() => tableFailed.abort());
      const signal = AbortSignal.any([stop.signal, tableFailed.signal]);
      client = await buildClient(config, dynamo, metrics, log.child({ role: "client" }), dryRun, out, { once, signal });
      if (!client) {
        if (tableFailed.signal.aborted) await tableCheck;
        // Stopped while waiting for HAProxy's socket: nothing was started, nothing to report.
        return 0;
      }
    }

    if (once) {
      let code = 0;
      if (server) {
        const lease = dryRun ? undefined : await server.server.leaseTick();
        if (!dryRun && lease === undefined) {
          code = 1;
          log.error("nothing published: the lease could not be read or taken", { error: server.server.lastLeaseError });
        } else {
          const r = await server.server.tick();
          if (r.sourceError || r.error) code = 1;
          if (r.role === "standby") log.info("standby: another server leads this pool; nothing published", { holder: lease?.role === "standby" ? lease.holder?.owner : undefined });
        }
      }
      if (client) {
        await tableCheck;
        const r = await client.agent.tick();
        const rec = r.reconcile;
        const matches = rec !== undefined && !r.runtimeError && rec.failed.length === 0 && (dryRun || rec.problems.length === 0);
        if (!matches) {
          code = 1;
          if (!rec) log.error("nothing applied: no snapshot could be read (table or cache)", { pools: r.pools.map((p) => p.lastError).filter(Boolean) });
        }
      }
      return code;
    }

    const major = Number(process.versions.node.split(".")[0]);
    if (major < 22) log.warn("Node.js 20: AWS SDK releases after January 2027 need Node.js 22 or later", { node: process.versions.node });
    log.info("hsdo started", {
      ...buildInfo(),
      roles: [args.server && "server", args.client && "client"].filter(Boolean).join("+"),
      pool: config.pool,
      table: config.dynamodb.table,
      dryRun,
    });
    // One role failing (a ConfigError at takeover, a missing table) stops the others, so the process exits and its supervisor restarts it.
    const roles = [
      server?.server.run(stop.signal),
      client?.agent.run(stop.signal),
      args.server ? undefined : tableCheck.then(() => untilAborted(stop.signal)),
    ].filter((r): r is Promise<void> => r !== undefined);
    const ended = await Promise.allSettled(roles.map((r) => r.finally(() => stop.abort())));
    const failed = ended.find((e): e is PromiseRejectedResult => e.status === "rejected");
    if (failed) throw failed.reason;
    return 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onHangup);
    for (const fn of cleanup.reverse()) {
      try {
        await fn();
      } catch (err) {
        log.warn("cleanup failed", { error: errorMessage(err) });
      }
    }
  }
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
}

/**
 * Refuses, before contending for the lease, a size that would cut off an
 * occupied slot: a standby with such a size would otherwise only fail at
 * takeover, in the middle of an incident. The takeover checks again.
 */
async function checkSizeAgainstPool(resolved: ResolvedConfig, dynamo: DynamoHandle, mustReach: boolean, log: Logger): Promise<void> {
  const { config } = resolved;
  let snapshot: Snapshot | undefined;
  try {
    snapshot = await new SlotReader({ client: dynamo.client, table: dynamo.table, pool: config.pool }).snapshot();
  } catch (err) {
    if (mustReach) throw dynamoFailure(dynamo, err);
    log.warn("could not read the pool to check the size; the takeover will check it", { pool: config.pool, error: errorMessage(err) });
    return;
  }
  if (!snapshot) return;
  try {
    normalizeSlots(snapshot.slots, config.size);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const source = resolved.sources.get("size");
    const label = source?.kind === "env" || source?.kind === "flag" ? `${source.name} (size)` : "size";
    throw new ConfigError(label, err.value, `${err.expected} (pool ${config.pool} in table ${dynamo.table})`, { cause: err });
  }
}

function mergeReadiness(parts: (Readiness | undefined)[]): Readiness {
  const reasons = parts.flatMap((p) => p?.reasons ?? []);
  const warnings = parts.flatMap((p) => p?.warnings ?? []);
  return { ready: reasons.length === 0, reasons, warnings };
}

async function buildServer(config: Config, dynamo: DynamoHandle, metrics: Metrics, log: Logger, dryRun: boolean, out: Out) {
  const owner = config.server.id || `${hostname()}-${process.pid}`;
  const common = { client: dynamo.client, table: dynamo.table, pool: config.pool, observe: metrics.observeDynamo };
  const source = buildSource(config, log);
  const lease = new LeaseKeeper({ ...common, owner, leaseMs: config.server.leaseMs, clock: systemClock, log });
  const writer = new FencedWriter({ ...common, leader: owner });
  const reader = new SlotReader(common);
  const pool = config.pool;
  const server = new Server({
    pool,
    source,
    lease,
    writer,
    reader,
    slots: {
      size: config.size,
      weight: config.server.weight,
      drainMs: config.server.drainMs,
      maxRemovalFraction: config.server.maxRemovalFraction,
      confirmTicks: config.server.confirmTicks,
    },
    addresses: { allowLoopback: config.allowLoopback },
    intervalMs: config.intervalMs,
    heartbeatMs: config.server.heartbeatMs,
    dryRun,
    log,
    onTick: (r) => {
      recordServerTick(metrics, pool, source.name, r);
      if (dryRun) printDryRun(r, out);
    },
    onLease: (status) => {
      metrics.leader.set({ pool }, status?.role === "leader" ? 1 : 0);
      if (status?.role === "leader") metrics.epoch.set({ pool }, status.term.epoch);
    },
  });
  return {
    server,
    readiness(): Readiness {
      const reasons: string[] = [];
      if (!server.lastSourceOk) reasons.push(`server: source ${source.name} is not answering`);
      if (!dryRun && (server.lastLeaseError || !server.lastLease)) reasons.push(`server: lease unreadable: ${server.lastLeaseError ?? "not read yet"}`);
      return { ready: reasons.length === 0, reasons };
    },
    /** Lets the lease go (--once, or after run() already did: then a no-op), so a standby need not wait a full lease. */
    async close() {
      source.close?.();
      await lease.release().catch((err: unknown) => log.warn("could not release the lease", { error: errorMessage(err) }));
      lease.stop();
    },
  };
}

async function buildClient(
  config: Config,
  dynamo: DynamoHandle,
  metrics: Metrics,
  log: Logger,
  dryRun: boolean,
  out: Out,
  run: { once: boolean; signal: AbortSignal },
) {
  const api = new RuntimeApi({ socket: config.client.socket, timeoutMs: config.client.timeoutMs, batchBytes: config.client.batchBytes });
  // A dry run changes nothing, not even the weight probe it puts back at once.
  const check = () => preflight(api, { backends: config.client.backends, size: config.size, probeWeights: !dryRun });
  // A missing or refusing socket (HAProxy not started yet, restarting): a long-running client waits for it;
  // a one-shot run fails (exit 1) saying so. A wrong path type, permissions or a missing backend still exit 2.
  const report = run.once ? await check() : await preflightWhenUp(check, { signal: run.signal, log, socket: config.client.socket });
  if (!report) return undefined;
  for (const w of report.warnings) log.warn("preflight", { warning: w });
  log.info("HAProxy ready", { version: report.version, socket: config.client.socket, backends: config.client.backends.map((b) => b.name) });
  let az = config.client.az;
  if (az === "auto") {
    az = await readAvailabilityZone();
    log.info("AZ from the instance metadata service", { az });
  }
  const pools = [...new Set(config.client.backends.map((b) => b.pool))];
  // One attempt bounded by one interval: a tick never waits on SDK retries (the next tick is the retry).
  const reads = dynamo.derive({ maxAttempts: 1, requestTimeoutMs: Math.max(200, config.intervalMs) });
  const pollers = pools.map((pool) => new SlotReader({ client: reads, table: dynamo.table, pool, observe: metrics.observeDynamo }));
  const reconciler = new Reconciler({
    api,
    backends: config.client.backends,
    client: { az, groups: config.client.groups },
    dryRun,
    allowLoopback: config.allowLoopback,
    observer: {
      commandsSent: (backend, n) => metrics.runtimeCommands.inc({ backend, outcome: "ok" }, n),
      commandsFailed: (backend, n) => metrics.runtimeCommands.inc({ backend, outcome: "failed" }, n),
      driftCorrected: (backend, n) => metrics.driftCorrections.inc({ backend }, n),
    },
  });
  const agent = new ClientAgent({
    pollers,
    reconciler,
    cacheDir: dryRun ? "" : config.client.cacheDir,
    origin: { endpoint: dynamo.endpoint, region: dynamo.region, table: dynamo.table },
    serverStateFile: dryRun ? "" : config.client.serverStateFile,
    maxSnapshotAgeMs: config.client.maxSnapshotAgeMs,
    intervalMs: config.intervalMs,
    haproxyProcess: async () => {
      const info = await api.run("show info");
      const pid = /^Pid: (\d+)$/m.exec(info.text)?.[1];
      return pid;
    },
    log,
    onTick: (r) => {
      recordClientTick(metrics, r);
      if (dryRun) printClientDryRun(r, out);
    },
    onNewProcess: () => metrics.haproxyProcesses.inc(),
    checkFirstSnapshot: (snapshot) => checkPortOmissions([snapshot], config.client.backends, { az, groups: config.client.groups }),
  });
  metrics.snapshotAges = () => agent.ages();
  return { agent };
}
