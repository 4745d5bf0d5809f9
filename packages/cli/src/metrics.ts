import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { buildInfo } from "./build-info.ts";
import { OPERATIONS, OUTCOMES } from "@hsdo/store";

/** Label values the recorders use (recorders.ts, run.ts): the counters start at 0 for each. */
export const LIFECYCLE_OUTCOMES = ["ok", "failed"] as const;
export const COMMAND_OUTCOMES = ["ok", "failed"] as const;
export const RUNTIME_ERROR_KINDS = ["exchange"] as const;

/**
 * Every metric (README "Metrics") in one registry built by the composition root
 * and handed to the server and client loops (no global registry).
 */
export class Metrics {
  readonly registry = new Registry();

  // Server
  readonly slots = new Gauge({ name: "hsdo_slots", help: "Slots by state", labelNames: ["pool", "state"], registers: [this.registry] });
  readonly slotWeight = new Gauge({ name: "hsdo_slot_weight", help: "Weight of each occupied slot", labelNames: ["pool", "slot"], registers: [this.registry] });
  /** HSDO's own gauge, same name, labels and values, kept for existing dashboards (README "Moving from HSDO"). */
  readonly hsdoServerWeight = new Gauge({
    name: "hsdo_server_weight",
    help: "Weight of server in backend (HSDO's gauge, kept for its dashboards: id slot, name target id, ip address, asg group; server and client)",
    labelNames: ["id", "name", "ip", "asg"],
    registers: [this.registry],
  });
  readonly leader = new Gauge({ name: "hsdo_leader", help: "1 when this server holds the lease", labelNames: ["pool"], registers: [this.registry] });
  readonly epoch = new Gauge({ name: "hsdo_epoch", help: "Leadership term of this server (or last seen)", labelNames: ["pool"], registers: [this.registry] });
  readonly generation = new Gauge({ name: "hsdo_generation", help: "Generation of the pool published or applied", labelNames: ["pool", "role"], registers: [this.registry] });
  readonly sourceTargets = new Gauge({ name: "hsdo_source_targets", help: "Targets listed by the source, by health", labelNames: ["source", "health"], registers: [this.registry] });
  readonly sourceErrors = new Counter({ name: "hsdo_source_errors_total", help: "Source listings that failed", labelNames: ["source"], registers: [this.registry] });
  readonly unassigned = new Gauge({ name: "hsdo_unassigned_targets", help: "Ready targets waiting for a free slot", labelNames: ["pool"], registers: [this.registry] });
  readonly quarantined = new Gauge({
    name: "hsdo_quarantined_slots",
    help: "Slots whose item failed validation and that nothing identifies yet (leader: kept occupied, given to nobody)",
    labelNames: ["pool"],
    registers: [this.registry],
  });
  readonly valveHeld = new Counter({ name: "hsdo_safety_valve_held_total", help: "Source answers held by the safety valve", labelNames: ["pool"], registers: [this.registry] });
  readonly publications = new Counter({ name: "hsdo_publications_total", help: "Generations published", labelNames: ["pool"], registers: [this.registry] });
  readonly lifecycleCompletions = new Counter({ name: "hsdo_lifecycle_completions_total", help: "ASG lifecycle actions completed", labelNames: ["outcome"], registers: [this.registry] });

  // Both
  readonly tickDuration = new Histogram({
    name: "hsdo_tick_duration_seconds",
    help: "Duration of one tick",
    labelNames: ["role"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly tickErrors = new Counter({ name: "hsdo_tick_errors_total", help: "Ticks that ended in an error", labelNames: ["role"], registers: [this.registry] });
  readonly dynamoRequests = new Counter({
    name: "hsdo_dynamodb_requests_total",
    help: "DynamoDB requests by operation and outcome",
    labelNames: ["operation", "outcome"],
    registers: [this.registry],
  });
  readonly dynamoCapacity = new Counter({
    name: "hsdo_dynamodb_consumed_capacity_total",
    help: "DynamoDB capacity units consumed by operation",
    labelNames: ["operation"],
    registers: [this.registry],
  });

  // Client
  readonly runtimeCommands = new Counter({
    name: "hsdo_runtime_api_commands_total",
    help: "Runtime API commands sent, by backend and outcome",
    labelNames: ["backend", "outcome"],
    registers: [this.registry],
  });
  readonly runtimeErrors = new Counter({ name: "hsdo_runtime_api_errors_total", help: "Runtime API exchanges that failed", labelNames: ["kind"], registers: [this.registry] });
  readonly driftCorrections = new Counter({
    name: "hsdo_drift_corrections_total",
    help: "Commands that repaired HAProxy state changed behind hsdo's back (restart, hand edits)",
    labelNames: ["backend"],
    registers: [this.registry],
  });
  readonly invalidSlots = new Gauge({ name: "hsdo_invalid_slots", help: "Slot items that failed validation (kept in maint)", labelNames: ["pool"], registers: [this.registry] });
  readonly reconcileProblems = new Gauge({
    name: "hsdo_reconcile_problems",
    help: "Servers or backends the last tick could not reconcile (left as HAProxy has them; the log and /readyz say why)",
    registers: [this.registry],
  });
  readonly haproxyProcesses = new Counter({
    name: "hsdo_haproxy_new_process_total",
    help: "New HAProxy processes seen behind the socket (reloads, restarts), each reconciled at once",
    registers: [this.registry],
  });
  /** Read at every scrape (prom-client's collect), so the age grows while nothing else happens. */
  snapshotAges: () => { pool: string; seconds: number }[] = () => [];
  readonly snapshotAge = new Gauge({
    name: "hsdo_snapshot_age_seconds",
    help: "Time since the table was last read successfully",
    labelNames: ["pool"],
    registers: [this.registry],
    collect: () => {
      for (const a of this.snapshotAges()) this.snapshotAge.set({ pool: a.pool }, a.seconds);
    },
  });

  /** Always 1: which hsdo a Prometheus series came from (joins on instance). */
  readonly buildInfo = new Gauge({
    name: "hsdo_build_info",
    help: "hsdo's version, the commit it was built from and its Node.js version (value 1)",
    labelNames: ["version", "commit", "node"],
    registers: [this.registry],
  });

  constructor(opts: { processMetrics?: boolean } = {}) {
    this.buildInfo.set({ ...buildInfo() }, 1);
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    // Every operation the store reports starts at 0, so a rate() or an alert sees its first request or failure.
    for (const operation of OPERATIONS) {
      for (const outcome of OUTCOMES) this.dynamoRequests.inc({ operation, outcome }, 0);
      this.dynamoCapacity.inc({ operation }, 0);
    }
  }

  /**
   * The server's labelled counters at 0 for every label it knows at start
   * (its pool, its source, both outcomes), so a dashboard shows 0 rather than
   * nothing and a rate() alert sees the first event, not only the second.
   */
  initServer(known: { pool: string; source: string }): void {
    this.sourceErrors.inc({ source: known.source }, 0);
    this.tickErrors.inc({ role: "server" }, 0);
    this.valveHeld.inc({ pool: known.pool }, 0);
    this.publications.inc({ pool: known.pool }, 0);
    for (const outcome of LIFECYCLE_OUTCOMES) this.lifecycleCompletions.inc({ outcome }, 0);
  }

  /** The client's labelled counters at 0: every configured backend, both outcomes, and each kind of failure. */
  initClient(known: { backends: readonly string[] }): void {
    for (const backend of known.backends) {
      for (const outcome of COMMAND_OUTCOMES) this.runtimeCommands.inc({ backend, outcome }, 0);
      this.driftCorrections.inc({ backend }, 0);
    }
    this.tickErrors.inc({ role: "client" }, 0);
    for (const kind of RUNTIME_ERROR_KINDS) this.runtimeErrors.inc({ kind }, 0);
  }

  /** The store's observe hook: counts requests, failed conditions and consumed capacity. */
  observeDynamo = (operation: string, outcome: string, consumed?: number): void => {
    this.dynamoRequests.inc({ operation, outcome });
    if (consumed) this.dynamoCapacity.inc({ operation }, consumed);
  };
}
