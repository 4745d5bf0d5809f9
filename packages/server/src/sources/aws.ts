import {
  AutoScalingClient,
  CompleteLifecycleActionCommand,
  DescribeAutoScalingGroupsCommand,
  type AutoScalingGroup,
} from "@aws-sdk/client-auto-scaling";
import { DescribeInstancesCommand, EC2Client, type Instance as Ec2Instance } from "@aws-sdk/client-ec2";
import { ConfigError, SourceError, byLaunch, errorMessage, isIpLiteral, isSafeName, systemClock, type Clock, type Target } from "@hsdo/core";
import type { AwsSourceConfig } from "@hsdo/core";
import { classifyInstance, waitsForHook } from "./aws-classify.ts";
import { SdkRetryStrategy } from "./aws-retry.ts";
import type { TargetSource } from "./types.ts";

export interface AwsClients {
  autoScaling: AutoScalingClient;
  ec2: EC2Client;
}

export interface AwsSourceOptions {
  clock?: Clock;
  /** Instance ids per DescribeInstances request. */
  describeBatchSize?: number;
}

export interface AwsClientOptions {
  region?: string;
  requestTimeoutMs?: number;
  /** Ceiling of one wait between two attempts (the server passes its interval). */
  maxBackoffMs?: number;
}

/**
 * Clients whose endpoint, region, credentials and retries come from the SDK's
 * own resolution (AWS_REGION, AWS_PROFILE, instance roles,
 * AWS_ENDPOINT_URL_AUTO_SCALING, AWS_ENDPOINT_URL_EC2, AWS_MAX_ATTEMPTS,
 * AWS_RETRY_MODE): the SDK's retry strategies, with a backoff capped at
 * `maxBackoffMs` (aws-retry.ts says why).
 */
export function createAwsClients({ region, requestTimeoutMs = 10_000, maxBackoffMs = 5_000 }: AwsClientOptions = {}): AwsClients {
  const common = {
    ...(region ? { region } : {}),
    requestHandler: { requestTimeout: requestTimeoutMs, throwOnRequestTimeout: true, connectionTimeout: Math.min(requestTimeoutMs, 3_000) },
  };
  const asgRetry = new SdkRetryStrategy(maxBackoffMs);
  const ec2Retry = new SdkRetryStrategy(maxBackoffMs);
  const autoScaling = new AutoScalingClient({ ...common, retryStrategy: asgRetry });
  const ec2 = new EC2Client({ ...common, retryStrategy: ec2Retry });
  asgRetry.resolveFrom(() => autoScaling.config);
  ec2Retry.resolveFrom(() => ec2.config);
  return { autoScaling, ec2 };
}

/** What EC2 says of an instance that never changes: asked once per instance id. */
interface InstanceFacts {
  ip: string;
  az: string;
  launchedAt: number;
}

interface Member {
  id: string;
  group: string;
  az: string;
  lifecycleState: string;
  healthStatus: string;
}

const SOURCE = "aws";
const MAX_RECORDS = 100;
const NOT_FOUND_ID = /i-[0-9a-f]+/g;

/**
 * Targets from Auto Scaling groups: DescribeAutoScalingGroups at most once
 * per `pollIntervalMs` (calls in between answer from the last listing, so a
 * one-second tick on the leader and every standby does not spend the
 * account's Auto Scaling API rate), DescribeInstances only for instance ids
 * never seen before.
 */
export class AwsSource implements TargetSource {
  readonly name = SOURCE;
  private readonly facts = new Map<string, InstanceFacts>();
  private readonly firstSeen = new Map<string, number>();
  private readonly clock: Clock;
  private readonly batchSize: number;
  private readonly groupNames: string[];
  /** The last successful listing and when it was made (monotonic ms). */
  private last?: { at: number; members: Member[] };

  constructor(
    private readonly config: AwsSourceConfig,
    private readonly clients: AwsClients,
    options: AwsSourceOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.batchSize = Math.max(1, Math.min(1000, options.describeBatchSize ?? 1000));
    this.groupNames = [...new Set(config.asgNames)];
    // An empty name list would make DescribeAutoScalingGroups describe every group of the account.
    if (this.groupNames.length === 0) {
      throw new ConfigError("server.aws.asgNames", config.asgNames, "names no Auto Scaling group (expected at least one name)");
    }
  }

  async list(signal?: AbortSignal): Promise<Target[]> {
    const poll = this.config.pollIntervalMs ?? 0;
    if (this.last && poll > 0 && this.clock.monotonic() - this.last.at < poll) return this.last.members.map((m) => this.target(m)).sort(byLaunch);
    const groups = await this.describeGroups(signal);
    const missing = this.groupNames.filter((name) => !groups.has(name));
    if (missing.length > 0) {
      const region = await this.region();
      throw new SourceError(
        SOURCE,
        `Auto Scaling group${missing.length > 1 ? "s" : ""} ${missing.map((n) => JSON.stringify(n)).join(", ")} not found in region ${region} (check server.aws.asgNames and AWS_REGION)`,
      );
    }
    const members = this.members(groups);
    const unknown = members.map((m) => m.id).filter((id) => !this.facts.has(id));
    if (unknown.length > 0) await this.describeInstances(unknown, signal);
    this.prune(new Set(members.map((m) => m.id)));
    this.last = { at: this.clock.monotonic(), members };
    return members.map((m) => this.target(m)).sort(byLaunch);
  }

  async completeLifecycle(target: Target): Promise<void> {
    const hook = target.lifecycleHook;
    if (!hook) return;
    const command = new CompleteLifecycleActionCommand({
      AutoScalingGroupName: target.group,
      LifecycleHookName: hook,
      InstanceId: target.id,
      LifecycleActionResult: "CONTINUE",
    });
    try {
      await this.call("CompleteLifecycleAction", () => this.clients.autoScaling.send(command));
    } catch (err) {
      // The action already ended (completed earlier, or its heartbeat timed out): nothing is left to complete.
      if (err instanceof SourceError && /No active Lifecycle Action/i.test(errorMessage(err.cause))) return;
      throw err;
    }
  }

  private async describeGroups(signal?: AbortSignal): Promise<Map<string, AutoScalingGroup>> {
    const groups = new Map<string, AutoScalingGroup>();
    let token: string | undefined;
    do {
      const command = new DescribeAutoScalingGroupsCommand({
        AutoScalingGroupNames: this.groupNames,
        MaxRecords: MAX_RECORDS,
        ...(token ? { NextToken: token } : {}),
      });
      const page = await this.call("DescribeAutoScalingGroups", () => this.clients.autoScaling.send(command, { abortSignal: signal }), signal);
      for (const group of page.AutoScalingGroups ?? []) {
        if (group.AutoScalingGroupName) groups.set(group.AutoScalingGroupName, group);
      }
      token = page.NextToken || undefined;
    } while (token);
    return groups;
  }

  /** Instances of the configured groups, in configuration order; an answer missing a field is refused whole. */
  private members(groups: Map<string, AutoScalingGroup>): Member[] {
    const seen = new Set<string>();
    const out: Member[] = [];
    for (const name of this.groupNames) {
      for (const [index, inst] of (groups.get(name)?.Instances ?? []).entries()) {
        const id = inst.InstanceId;
        if (!isSafeName(id) || typeof inst.LifecycleState !== "string" || typeof inst.HealthStatus !== "string") {
          throw new SourceError(
            SOURCE,
            `DescribeAutoScalingGroups answered an instance without a usable InstanceId/LifecycleState/HealthStatus (group ${name}, instance #${index + 1}: ${JSON.stringify(inst)})`,
          );
        }
        if (seen.has(id)) continue;
        seen.add(id);
        if (!this.firstSeen.has(id)) this.firstSeen.set(id, this.clock.now());
        out.push({ id, group: name, az: inst.AvailabilityZone ?? "", lifecycleState: inst.LifecycleState, healthStatus: inst.HealthStatus });
      }
    }
    return out;
  }

  private async describeInstances(ids: string[], signal?: AbortSignal): Promise<void> {
    for (let start = 0; start < ids.length; start += this.batchSize) {
      let batch = ids.slice(start, start + this.batchSize);
      while (batch.length > 0) {
        const notFound = await this.describeBatch(batch, signal);
        if (notFound.length === 0) break;
        // EC2 can lag behind Auto Scaling for a new instance: ask again for the others, the rest stays pending.
        batch = batch.filter((id) => !notFound.includes(id));
      }
    }
  }

  /** Describes one batch, storing what it learns; returns the ids EC2 does not know yet (the batch then failed whole). */
  private async describeBatch(batch: string[], signal?: AbortSignal): Promise<string[]> {
    let token: string | undefined;
    try {
      do {
        const command = new DescribeInstancesCommand({ InstanceIds: batch, ...(token ? { NextToken: token } : {}) });
        const page = await this.call("DescribeInstances", () => this.clients.ec2.send(command, { abortSignal: signal }), signal);
        for (const reservation of page.Reservations ?? []) {
          for (const inst of reservation.Instances ?? []) this.learn(inst);
        }
        token = page.NextToken || undefined;
      } while (token);
      return [];
    } catch (err) {
      const cause = err instanceof SourceError ? err.cause : undefined;
      if (!isNotFound(cause)) throw err;
      const named: string[] = errorMessage(cause).match(NOT_FOUND_ID) ?? [];
      const notFound = batch.filter((id) => named.includes(id));
      // A NotFound that names none of our ids cannot be narrowed down: report it rather than loop.
      if (notFound.length === 0) throw err;
      return notFound;
    }
  }

  private learn(inst: Ec2Instance): void {
    const id = inst.InstanceId;
    // Without a private IP yet there is nothing to route to: not cached, so asked again next time.
    if (!id || !isIpLiteral(inst.PrivateIpAddress)) return;
    const launched = inst.LaunchTime instanceof Date ? inst.LaunchTime.getTime() : Number.NaN;
    this.facts.set(id, {
      ip: inst.PrivateIpAddress,
      az: inst.Placement?.AvailabilityZone ?? "",
      launchedAt: Number.isFinite(launched) ? launched : (this.firstSeen.get(id) ?? this.clock.now()),
    });
  }

  private prune(current: Set<string>): void {
    for (const id of this.facts.keys()) if (!current.has(id)) this.facts.delete(id);
    for (const id of this.firstSeen.keys()) if (!current.has(id)) this.firstSeen.delete(id);
  }

  private target(m: Member): Target {
    const facts = this.facts.get(m.id);
    const target: Target = {
      id: m.id,
      addr: facts?.ip ?? "",
      group: m.group,
      az: m.az || facts?.az || "",
      launchedAt: facts?.launchedAt ?? this.firstSeen.get(m.id) ?? this.clock.now(),
      health: classifyInstance(m.lifecycleState, m.healthStatus, facts !== undefined),
    };
    if (this.config.port !== undefined) target.port = this.config.port;
    if (this.config.lifecycleHook && waitsForHook(m.lifecycleState)) target.lifecycleHook = this.config.lifecycleHook;
    return target;
  }

  /**
   * One AWS call (the SDK retries it: createAwsClients); its final failure
   * becomes a SourceError naming the action and the attempts the SDK made.
   */
  private async call<T>(action: string, send: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    try {
      return await send();
    } catch (err) {
      const attempts = sdkAttempts(err);
      const reason = signal?.aborted ? "aborted" : `${errorCode(err)}${errorMessage(err)}`;
      throw new SourceError(SOURCE, `${action} failed after ${attempts} attempt${attempts > 1 ? "s" : ""}: ${reason}`, { cause: err });
    }
  }

  private async region(): Promise<string> {
    try {
      return await this.clients.autoScaling.config.region();
    } catch {
      return "(unknown)";
    }
  }
}

function isNotFound(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { name?: unknown }).name === "InvalidInstanceID.NotFound";
}

function errorCode(err: unknown): string {
  const name = typeof err === "object" && err !== null ? (err as { name?: unknown }).name : undefined;
  return typeof name === "string" && name !== "Error" ? `${name}: ` : "";
}

/** The attempts the SDK made for a failed call (`$metadata.attempts`); 1 when it did not say (an abort, a local error). */
function sdkAttempts(err: unknown): number {
  const n = typeof err === "object" && err !== null ? (err as { $metadata?: { attempts?: unknown } }).$metadata?.attempts : undefined;
  return typeof n === "number" && n >= 1 ? n : 1;
}
