import { errorMessage, isSafeName, type AddressPolicy, type BackendConfig, type Snapshot } from "@hsdo/core";
import { applyCommands } from "./apply.ts";
import { formatCommand, type RuntimeCommand } from "./commands.ts";
import { desiredServers, type ClientIdentity, type DesiredServer, type KeptServer } from "./desired.ts";
import { plan } from "./plan.ts";
import type { RuntimeExchange, RuntimeSender } from "./runtime-api.ts";
import { mergeServersStates } from "./server-state-file.ts";
import { parseServersState, type ActualServer } from "./servers-state.ts";

export interface FailedCommand {
  command: RuntimeCommand;
  line: string;
  severity?: number;
  text: string;
  /** HAProxy answered in a wording not known for this command (see commands.ts checkAnswer). */
  unrecognised?: true;
}

/** The outcome of one tick, as data (planned = would do, sent = did). */
export interface ReconcileResult {
  dryRun: boolean;
  /** Every command the diff called for, in order. */
  planned: RuntimeCommand[];
  /** Commands sent and accepted by HAProxy. Empty in dry-run. */
  sent: RuntimeCommand[];
  /** Commands HAProxy refused (or that could not be rendered), with its answer. */
  failed: FailedCommand[];
  /** Planned commands that repair drift: the server's desired state had not changed since it was last applied. */
  drift: RuntimeCommand[];
  /** What could not be reconciled and why (invalid slots, missing servers or backends, no snapshot, kept servers, refused weights). */
  problems: string[];
  /**
   * HAProxy's `show servers state` of the driven backends, in the server-state
   * file format, taken on the same connection after the apply: present when
   * commands were sent or the caller asked for it (`dumpState`).
   */
  serverState?: string;
  /** Slots kept in `maint` because their address can never be a target (each pool/slot once): counted as invalid slots. */
  refused?: { pool: string; slot: number }[];
  /**
   * "Cannot reconcile": live slots whose server was left exactly as HAProxy
   * has it (no command), because the client cannot know what it should be
   * (no port known, a name it cannot address). Also in `problems`; a distinct
   * list so readiness and metrics can tell them from passing trouble.
   */
  kept: KeptEntry[];
}

export interface ReconcileTickOptions {
  /** Dump the servers' state even if nothing was sent (first apply, new HAProxy process, missing file). */
  dumpState?: boolean;
}

export interface KeptEntry {
  backend: string;
  server: string;
  slot: number;
  reason: KeptServer["reason"];
  problem: string;
}

/**
 * HAProxy's refusal of `set server ... weight` on a backend whose algorithm
 * is static (static-rr, or a map-based hash): src/server.c,
 * server_parse_weight_change_request, same text from 1.x to 3.x.
 */
export const STATIC_LB_REFUSAL = /static LB algorithm/i;

/** The fix for a backend whose algorithm refuses weights, as said at start-up and at run time. */
export function staticAlgorithmFix(backend: string): string {
  return (
    `backend ${backend} uses a static load-balancing algorithm, and HAProxy refuses every weight but 0 and 100%: ` +
    `with \`balance uri\` (or source, hdr, url_param, rdp-cookie) add \`hash-type consistent\` under \`backend ${backend}\`; ` +
    "with `balance static-rr` use `balance roundrobin`"
  );
}

/** Hooks for metrics, called after each applied tick (not in dry-run); counts are per backend. */
export interface ReconcileObserver {
  commandsSent?(backend: string, count: number): void;
  commandsFailed?(backend: string, count: number): void;
  driftCorrected?(backend: string, count: number): void;
}

export interface ReconcilerOptions {
  api: RuntimeSender;
  backends: readonly BackendConfig[];
  client: ClientIdentity;
  /** Plan only: show what would be sent, send nothing. */
  dryRun?: boolean;
  observer?: ReconcileObserver;
  /** Apply loopback targets (configuration `allowLoopback`); other refused addresses are never applied. */
  allowLoopback?: boolean;
}

/**
 * Level-triggered: every tick reads HAProxy's actual state again (one
 * `show servers state <backend>` per backend, in one batch), diffs it with
 * the snapshot and sends only the difference, so hand-made changes and a
 * restarted HAProxy are repaired by the same path. No difference, no
 * command. The caller owns the snapshot (store, cache), the timing and the
 * logging; a tick never sleeps or retries.
 *
 * A backend whose pool has no snapshot, or that HAProxy does not know, is
 * left as it is and reported in `problems`. Throws RuntimeApiError only when
 * the Runtime API cannot be used at all (then nothing of this tick is known
 * to be applied, and the next tick starts over).
 */
export class Reconciler {
  private readonly api: RuntimeSender;
  private readonly backends: readonly BackendConfig[];
  private readonly client: ClientIdentity;
  private readonly dryRun: boolean;
  private readonly observer: ReconcileObserver | undefined;
  private readonly addresses: AddressPolicy;
  /** Desired state of each `backend/server` as last applied without failure: the reference for drift. */
  private readonly applied = new Map<string, string>();

  constructor(options: ReconcilerOptions) {
    this.api = options.api;
    this.backends = options.backends;
    this.client = options.client;
    this.dryRun = options.dryRun ?? false;
    this.observer = options.observer;
    this.addresses = { allowLoopback: options.allowLoopback ?? false };
  }

  /**
   * One tick on one Runtime API connection: read, plan, apply, and dump the
   * state for the server-state file, so a reload between two of these steps
   * cannot leave a half-applied plan on one process and a stale dump of it.
   */
  async tick(snapshots: Snapshot | readonly Snapshot[], options: ReconcileTickOptions = {}): Promise<ReconcileResult> {
    return this.api.session((conn) => this.tickOn(conn, snapshots, options));
  }

  private async tickOn(conn: RuntimeExchange, snapshots: Snapshot | readonly Snapshot[], options: ReconcileTickOptions): Promise<ReconcileResult> {
    const byPool = new Map<string, Snapshot>();
    for (const s of Array.isArray(snapshots) ? snapshots : [snapshots as Snapshot]) byPool.set(s.pool, s);

    const result: ReconcileResult = { dryRun: this.dryRun, planned: [], sent: [], failed: [], drift: [], problems: [], kept: [] };
    const usable = this.backends.filter((b) => {
      if (isSafeName(b.name) && isSafeName(b.prefix)) return true;
      result.problems.push(`backend ${JSON.stringify(b.name)} (prefix ${JSON.stringify(b.prefix)}) is not a name: skipped`);
      return false;
    });
    if (usable.length === 0) return result;

    const actual = await this.readActual(conn, usable, result.problems);
    const desiredByKey = new Map<string, string>();
    const perBackend: { backend: BackendConfig; desired: DesiredServer[] }[] = [];

    for (const backend of usable) {
      const servers = actual.get(backend.name);
      if (!servers) continue;
      const snapshot = byPool.get(backend.pool);
      if (!snapshot) {
        result.problems.push(`backend ${backend.name}: pool ${backend.pool} has no snapshot yet; HAProxy left as it is`);
        continue;
      }
      const desired = desiredServers(snapshot, backend, this.client, this.addresses);
      for (const d of desired) {
        if (d.problem) result.problems.push(`${backend.name}/${d.server}: ${d.problem}`);
        if (d.state === "keep") result.kept.push({ backend: backend.name, server: d.server, slot: d.slot, reason: d.reason, problem: d.problem });
        else if (d.refused && !result.refused?.some((r) => r.pool === backend.pool && r.slot === d.slot)) {
          (result.refused ??= []).push({ pool: backend.pool, slot: d.slot });
        }
        desiredByKey.set(`${backend.name}/${d.server}`, JSON.stringify(d));
      }
      const p = plan(desired, servers, backend);
      result.problems.push(...p.problems);
      result.planned.push(...p.commands);
      perBackend.push({ backend, desired });
    }

    for (const cmd of result.planned) {
      const key = `${cmd.backend}/${cmd.server}`;
      const was = this.applied.get(key);
      if (was !== undefined && was === desiredByKey.get(key)) result.drift.push(cmd);
    }

    if (this.dryRun) return result;

    const failedKeys = new Set<string>();
    if (result.planned.length > 0) {
      const outcomes = await applyCommands(conn, result.planned);
      for (const o of outcomes) {
        if (o.ok) {
          result.sent.push(o.command);
          continue;
        }
        failedKeys.add(`${o.command.backend}/${o.command.server}`);
        const failed: FailedCommand = { command: o.command, line: o.line, text: o.text };
        if (o.severity !== undefined) failed.severity = o.severity;
        if (o.unrecognised) failed.unrecognised = true;
        result.failed.push(failed);
      }
      const refusedWeights = new Set(
        result.failed.filter((f) => f.command.kind === "setWeight" && STATIC_LB_REFUSAL.test(f.text)).map((f) => f.command.backend),
      );
      for (const b of refusedWeights) result.problems.push(`${staticAlgorithmFix(b)}; the weights of its servers cannot be set`);
    }

    for (const { backend, desired } of perBackend) {
      const present = new Set((actual.get(backend.name) ?? []).map((s) => s.name));
      for (const d of desired) {
        // A kept server had nothing applied: what was last applied stays the reference for drift.
        if (d.state === "keep") continue;
        const key = `${backend.name}/${d.server}`;
        if (present.has(d.server) && !failedKeys.has(key)) this.applied.set(key, JSON.stringify(d));
        else this.applied.delete(key);
      }
    }
    if (result.sent.length > 0 || result.failed.length > 0 || options.dumpState) {
      const answers = await conn.send(usable.map((b) => `show servers state ${b.name}`));
      result.serverState = mergeServersStates(answers.filter((a) => a.ok).map((a) => a.text));
    }
    this.report(result);
    return result;
  }

  /** The command lines a dry run would send, for printing. */
  static lines(commands: readonly RuntimeCommand[]): string[] {
    return commands.map((c) => {
      try {
        return formatCommand(c);
      } catch (err) {
        return `# not sendable: ${errorMessage(err)}`;
      }
    });
  }

  private async readActual(conn: RuntimeExchange, backends: readonly BackendConfig[], problems: string[]): Promise<Map<string, ActualServer[]>> {
    const answers = await conn.send(backends.map((b) => `show servers state ${b.name}`));
    const out = new Map<string, ActualServer[]>();
    backends.forEach((backend, i) => {
      const answer = answers[i];
      if (!answer || !answer.ok) {
        problems.push(
          `backend ${backend.name}: HAProxy answered ${JSON.stringify(answer?.text ?? "nothing")} to "show servers state"; left as it is`,
        );
        return;
      }
      try {
        out.set(backend.name, parseServersState(answer.text).get(backend.name) ?? []);
      } catch (err) {
        problems.push(`backend ${backend.name}: ${errorMessage(err)}; left as it is`);
      }
    });
    return out;
  }

  private report(result: ReconcileResult): void {
    const o = this.observer;
    if (!o) return;
    const count = (list: readonly RuntimeCommand[]) => {
      const m = new Map<string, number>();
      for (const c of list) m.set(c.backend, (m.get(c.backend) ?? 0) + 1);
      return m;
    };
    for (const [b, n] of count(result.sent)) o.commandsSent?.(b, n);
    for (const [b, n] of count(result.failed.map((f) => f.command))) o.commandsFailed?.(b, n);
    const sent = new Set(result.sent);
    for (const [b, n] of count(result.drift.filter((c) => sent.has(c)))) o.driftCorrected?.(b, n);
  }
}
