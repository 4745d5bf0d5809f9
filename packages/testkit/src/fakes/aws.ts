import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";

/**
 * A wire-level fake of AWS Auto Scaling (Query protocol, 2011-01-01) and EC2
 * (EC2 Query protocol, 2016-11-15) on one 127.0.0.1 port, so the real SDK
 * clients can be pointed at it with AWS_ENDPOINT_URL_AUTO_SCALING and
 * AWS_ENDPOINT_URL_EC2. It speaks only what hsdo uses (DescribeAutoScalingGroups,
 * CompleteLifecycleAction, DescribeInstances) and rejects anything else loudly:
 * a request the real service would refuse must not pass here.
 *
 * Known differences from AWS: EC2 pages by instance (one reservation each) and
 * pages InstanceId requests too, at `pageSize.instances`, so that callers'
 * NextToken loops are exercised; AWS itself rarely pages such requests.
 */

export type LifecycleState = string;
export type HealthStatus = "Healthy" | "Unhealthy";

export interface FakeInstanceInput {
  id: string;
  /** Private IPv4; undefined = none assigned yet. */
  ip?: string;
  az: string;
  launchTime: Date | number | string;
  lifecycleState?: LifecycleState;
  healthStatus?: HealthStatus;
  /** false: Auto Scaling lists it but EC2 does not know it yet (eventual consistency). */
  inEc2?: boolean;
}

export interface FakeInstance {
  id: string;
  ip: string | undefined;
  az: string;
  launchTime: Date;
  lifecycleState: LifecycleState;
  healthStatus: HealthStatus;
  inEc2: boolean;
}

export type AwsAction = "DescribeAutoScalingGroups" | "CompleteLifecycleAction" | "DescribeInstances";

export interface FakeAwsCall {
  action: string;
  params: Record<string, string>;
  /** What the fake answered: HTTP status and, for errors, the error code. */
  status: number;
  code?: string;
}

export interface LifecycleCompletion {
  hook: string;
  group: string;
  instanceId: string;
  result: string;
}

export type FaultKind = "throttle" | "internal" | "hang";

export interface FakeAws {
  /** http://127.0.0.1:<port>, the endpoint of both services. */
  readonly url: string;
  readonly port: number;
  /** Variables for the SDK's own resolution (endpoint, region, dummy credentials). */
  env(): Record<string, string>;
  setGroup(name: string, instances: FakeInstanceInput[]): void;
  deleteGroup(name: string): void;
  updateInstance(id: string, patch: Partial<Omit<FakeInstanceInput, "id">>): void;
  removeInstance(id: string): void;
  addLifecycleHook(group: string, hook: string): void;
  setPageSize(size: { groups?: number; instances?: number }): void;
  /** The next `times` calls of `action` fail this way (queued after earlier faults). */
  fail(action: AwsAction, kind: FaultKind, times?: number): void;
  /** Number of requests per Action, faults included. */
  count(action: AwsAction): number;
  readonly calls: FakeAwsCall[];
  /** Every InstanceId.N asked in DescribeInstances, in order, with repeats. */
  readonly describedIds: string[];
  readonly completions: LifecycleCompletion[];
  /** Requests the fake refused as malformed: a test should expect this empty. */
  readonly protocolErrors: string[];
  resetLog(): void;
  stop(): Promise<void>;
}

const ASG_VERSION = "2011-01-01";
const EC2_VERSION = "2016-11-15";
const ASG_NS = `http://autoscaling.amazonaws.com/doc/${ASG_VERSION}/`;
const EC2_NS = `http://ec2.amazonaws.com/doc/${EC2_VERSION}/`;
const ACCOUNT = "123456789012";
const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;

const SERVICE_OF: Record<AwsAction, "autoscaling" | "ec2"> = {
  DescribeAutoScalingGroups: "autoscaling",
  CompleteLifecycleAction: "autoscaling",
  DescribeInstances: "ec2",
};

/** A realistic instance id from a number: i-00000000000000001. */
export function instanceId(n: number): string {
  return `i-${n.toString(16).padStart(17, "0")}`;
}

class AwsFault extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Group {
  name: string;
  instanceIds: string[];
  hooks: Set<string>;
  createdTime: Date;
  uuid: string;
}

export async function startFakeAws(options: { port?: number; region?: string } = {}): Promise<FakeAws> {
  const region = options.region ?? "eu-west-1";
  const groups = new Map<string, Group>();
  const instances = new Map<string, FakeInstance>();
  const pageSize = { groups: 50, instances: 1000 };
  const faults = new Map<AwsAction, FaultKind[]>();
  const calls: FakeAwsCall[] = [];
  const describedIds: string[] = [];
  const completions: LifecycleCompletion[] = [];
  const protocolErrors: string[] = [];

  function toInstance(input: FakeInstanceInput): FakeInstance {
    if (!INSTANCE_ID.test(input.id)) throw new Error(`fake aws: ${input.id} is not an instance id (i-[0-9a-f]{8,17})`);
    return {
      id: input.id,
      ip: input.ip,
      az: input.az,
      launchTime: new Date(input.launchTime),
      lifecycleState: input.lifecycleState ?? "InService",
      healthStatus: input.healthStatus ?? "Healthy",
      inEc2: input.inEc2 ?? true,
    };
  }

  function groupOf(id: string): Group | undefined {
    for (const g of groups.values()) if (g.instanceIds.includes(id)) return g;
    return undefined;
  }

  function handle(params: Record<string, string>, service: string): string {
    const action = params.Action ?? "";
    if (!(action in SERVICE_OF)) {
      throw new AwsFault(400, "InvalidAction", `fake aws: unsupported Action ${JSON.stringify(action)}`);
    }
    const expected = SERVICE_OF[action as AwsAction];
    if (service !== expected) {
      throw new AwsFault(400, "InvalidAction", `fake aws: ${action} signed for service ${service}, expected ${expected}`);
    }
    const version = expected === "ec2" ? EC2_VERSION : ASG_VERSION;
    if (params.Version !== version) {
      throw new AwsFault(400, "InvalidParameterValue", `fake aws: ${action} with Version ${params.Version}, expected ${version}`);
    }
    switch (action as AwsAction) {
      case "DescribeAutoScalingGroups":
        return describeGroups(params);
      case "CompleteLifecycleAction":
        return completeLifecycle(params);
      case "DescribeInstances":
        return describeInstances(params);
    }
  }

  function describeGroups(params: Record<string, string>): string {
    const names = memberList(params, "AutoScalingGroupNames.member");
    const maxRecords = optionalInt(params, "MaxRecords", 1, 100) ?? 50;
    const selected = [...groups.values()].filter((g) => names.length === 0 || names.includes(g.name));
    const { page, next } = paginate("DescribeAutoScalingGroups", params, selected, Math.min(maxRecords, pageSize.groups));
    const body = page.map(groupXml).join("");
    return (
      `<DescribeAutoScalingGroupsResponse xmlns="${ASG_NS}"><DescribeAutoScalingGroupsResult>` +
      `<AutoScalingGroups>${body}</AutoScalingGroups>${next ? el("NextToken", next) : ""}` +
      `</DescribeAutoScalingGroupsResult>${asgMetadata()}</DescribeAutoScalingGroupsResponse>`
    );
  }

  function groupXml(g: Group): string {
    const members = g.instanceIds.map((id) => instances.get(id)).filter((i): i is FakeInstance => i !== undefined);
    const azs = [...new Set(members.map((i) => i.az))].sort();
    return (
      "<member>" +
      el("AutoScalingGroupName", g.name) +
      el("AutoScalingGroupARN", `arn:aws:autoscaling:${region}:${ACCOUNT}:autoScalingGroup:${g.uuid}:autoScalingGroupName/${g.name}`) +
      el("MinSize", "0") +
      el("MaxSize", String(Math.max(10, members.length))) +
      el("DesiredCapacity", String(members.length)) +
      el("DefaultCooldown", "300") +
      `<AvailabilityZones>${azs.map((az) => el("member", az)).join("")}</AvailabilityZones>` +
      el("HealthCheckType", "EC2") +
      el("HealthCheckGracePeriod", "300") +
      el("CreatedTime", g.createdTime.toISOString()) +
      "<Instances>" +
      members
        .map(
          (i) =>
            "<member>" +
            el("InstanceId", i.id) +
            el("InstanceType", "c6i.large") +
            el("AvailabilityZone", i.az) +
            el("LifecycleState", i.lifecycleState) +
            el("HealthStatus", i.healthStatus) +
            el("ProtectedFromScaleIn", "false") +
            "</member>",
        )
        .join("") +
      "</Instances>" +
      "<SuspendedProcesses/><EnabledMetrics/><Tags/><TerminationPolicies><member>Default</member></TerminationPolicies>" +
      el("NewInstancesProtectedFromScaleIn", "false") +
      "</member>"
    );
  }

  function completeLifecycle(params: Record<string, string>): string {
    const hook = required(params, "LifecycleHookName");
    const groupName = required(params, "AutoScalingGroupName");
    const result = required(params, "LifecycleActionResult");
    const id = params.InstanceId;
    if (id === undefined && params.LifecycleActionToken === undefined) {
      throw new AwsFault(400, "ValidationError", "Either InstanceId or LifecycleActionToken must be specified");
    }
    if (result !== "CONTINUE" && result !== "ABANDON") {
      throw new AwsFault(400, "ValidationError", `LifecycleActionResult ${result} is not CONTINUE or ABANDON`);
    }
    const group = groups.get(groupName);
    if (!group || !group.hooks.has(hook)) {
      throw new AwsFault(400, "ValidationError", `No Lifecycle Hook found with name ${hook} for group ${groupName}`);
    }
    const inst = id !== undefined && group.instanceIds.includes(id) ? instances.get(id) : undefined;
    if (!inst || !/^(Terminating|Pending):Wait$/.test(inst.lifecycleState)) {
      throw new AwsFault(400, "ValidationError", `No active Lifecycle Action found with instance ID ${id}`);
    }
    completions.push({ hook, group: groupName, instanceId: inst.id, result });
    inst.lifecycleState = inst.lifecycleState.replace(":Wait", ":Proceed");
    return (
      `<CompleteLifecycleActionResponse xmlns="${ASG_NS}"><CompleteLifecycleActionResult/>` +
      `${asgMetadata()}</CompleteLifecycleActionResponse>`
    );
  }

  function describeInstances(params: Record<string, string>): string {
    const ids = memberList(params, "InstanceId");
    const maxResults = optionalInt(params, "MaxResults", 5, 1000);
    if (ids.length > 0 && maxResults !== undefined) {
      throw new AwsFault(400, "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults");
    }
    if (Object.keys(params).some((k) => k.startsWith("Filter."))) {
      throw new AwsFault(400, "InvalidParameterValue", "fake aws: DescribeInstances filters are not supported by this fake");
    }
    const first = params.NextToken === undefined;
    if (first) describedIds.push(...ids);
    const malformed = ids.filter((id) => !INSTANCE_ID.test(id));
    if (malformed.length > 0) {
      throw new AwsFault(400, "InvalidInstanceID.Malformed", `Invalid id: "${malformed[0]}"`);
    }
    const known = (id: string) => instances.get(id)?.inEc2 === true;
    const missing = ids.filter((id) => !known(id));
    if (missing.length === 1) {
      throw new AwsFault(400, "InvalidInstanceID.NotFound", `The instance ID '${missing[0]}' does not exist`);
    }
    if (missing.length > 1) {
      throw new AwsFault(400, "InvalidInstanceID.NotFound", `The instance IDs '${missing.join(", ")}' do not exist`);
    }
    const selected = ids.length > 0 ? ids.map((id) => instances.get(id) as FakeInstance) : [...instances.values()].filter((i) => i.inEc2);
    const { page, next } = paginate("DescribeInstances", params, selected, Math.min(maxResults ?? 1000, pageSize.instances));
    return (
      `<DescribeInstancesResponse xmlns="${EC2_NS}">${el("requestId", randomUUID())}` +
      `<reservationSet>${page.map(reservationXml).join("")}</reservationSet>` +
      `${next ? el("nextToken", next) : ""}</DescribeInstancesResponse>`
    );
  }

  function reservationXml(i: FakeInstance): string {
    const state = /^Pending/.test(i.lifecycleState)
      ? ["0", "pending"]
      : i.lifecycleState === "Terminated"
        ? ["48", "terminated"]
        : ["16", "running"];
    const group = groupOf(i.id);
    return (
      "<item>" +
      el("reservationId", `r-${i.id.slice(2)}`) +
      el("ownerId", ACCOUNT) +
      "<groupSet/><instancesSet><item>" +
      el("instanceId", i.id) +
      el("imageId", "ami-0123456789abcdef0") +
      `<instanceState>${el("code", state[0] ?? "16")}${el("name", state[1] ?? "running")}</instanceState>` +
      el("privateDnsName", i.ip ? `ip-${i.ip.replaceAll(".", "-")}.${region}.compute.internal` : "") +
      el("dnsName", "") +
      el("amiLaunchIndex", "0") +
      el("instanceType", "c6i.large") +
      el("launchTime", i.launchTime.toISOString()) +
      `<placement>${el("availabilityZone", i.az)}${el("groupName", "")}${el("tenancy", "default")}</placement>` +
      `<monitoring>${el("state", "disabled")}</monitoring>` +
      (i.ip ? el("privateIpAddress", i.ip) : "") +
      el("architecture", "x86_64") +
      el("rootDeviceType", "ebs") +
      (group ? `<tagSet><item>${el("key", "aws:autoscaling:groupName")}${el("value", group.name)}</item></tagSet>` : "") +
      "</item></instancesSet></item>"
    );
  }

  /** Opaque tokens that remember the request they belong to, as AWS refuses a token reused with other parameters. */
  function paginate<T>(action: string, params: Record<string, string>, items: T[], size: number): { page: T[]; next?: string } {
    const key = requestKey(params);
    let offset = 0;
    if (params.NextToken !== undefined) {
      const decoded = decodeToken(params.NextToken);
      if (!decoded || decoded.action !== action || decoded.key !== key) {
        throw new AwsFault(400, action === "DescribeInstances" ? "InvalidParameterValue" : "InvalidNextToken", "The token is not valid for this request");
      }
      offset = decoded.offset;
    }
    const page = items.slice(offset, offset + size);
    const nextOffset = offset + size;
    if (nextOffset >= items.length) return { page };
    return { page, next: Buffer.from(JSON.stringify({ action, key, offset: nextOffset })).toString("base64url") };
  }

  function record(call: FakeAwsCall): void {
    calls.push(call);
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const params = Object.fromEntries(new URLSearchParams(body));
    const action = params.Action ?? "";
    const service = signedService(req.headers.authorization);
    const isEc2 = service === "ec2" || action === "DescribeInstances";
    try {
      if (req.method !== "POST" || req.url !== "/") {
        throw new AwsFault(400, "InvalidAction", `fake aws: expected POST /, got ${req.method} ${req.url}`);
      }
      const type = req.headers["content-type"] ?? "";
      if (!type.startsWith("application/x-www-form-urlencoded")) {
        throw new AwsFault(400, "InvalidAction", `fake aws: content-type ${type}, expected application/x-www-form-urlencoded`);
      }
      if (service === undefined) {
        throw new AwsFault(403, "MissingAuthenticationToken", "fake aws: request is not signed with AWS4-HMAC-SHA256");
      }
      const fault = faults.get(action as AwsAction)?.shift();
      if (fault === "hang") {
        record({ action, params, status: 0, code: "hang" });
        return; // never answered: the caller's timeout or abort must end it
      }
      if (fault === "throttle") {
        throw isEc2
          ? new AwsFault(503, "RequestLimitExceeded", "Request limit exceeded.")
          : new AwsFault(400, "Throttling", "Rate exceeded");
      }
      if (fault === "internal") {
        throw isEc2
          ? new AwsFault(500, "InternalError", "An internal error has occurred")
          : new AwsFault(500, "InternalFailure", "An internal error has occurred");
      }
      const xml = handle(params, service);
      record({ action, params, status: 200 });
      send(res, 200, xml);
    } catch (err) {
      const fault = err instanceof AwsFault ? err : new AwsFault(500, "InternalFailure", String(err));
      if (fault.message.startsWith("fake aws:")) protocolErrors.push(fault.message);
      record({ action, params, status: fault.status, code: fault.code });
      send(res, fault.status, isEc2 ? ec2Error(fault) : asgError(fault));
    }
  }

  const server = createServer((req, res) => {
    onRequest(req, res).catch((err) => {
      protocolErrors.push(`fake aws: ${String(err)}`);
      if (!res.headersSent) send(res, 500, asgError(new AwsFault(500, "InternalFailure", String(err))));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    port,
    env: () => ({
      AWS_ENDPOINT_URL_AUTO_SCALING: url,
      AWS_ENDPOINT_URL_EC2: url,
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: "AKIAFAKEFAKEFAKEFAKE",
      AWS_SECRET_ACCESS_KEY: "fake-secret",
    }),
    setGroup(name, list) {
      const old = groups.get(name);
      for (const id of old?.instanceIds ?? []) instances.delete(id);
      const fresh = list.map(toInstance);
      for (const i of fresh) {
        const other = groupOf(i.id);
        if (other && other.name !== name) throw new Error(`fake aws: ${i.id} is already in group ${other.name}`);
        instances.set(i.id, i);
      }
      groups.set(name, {
        name,
        instanceIds: fresh.map((i) => i.id),
        hooks: old?.hooks ?? new Set(),
        createdTime: old?.createdTime ?? new Date(Date.UTC(2025, 0, 1)),
        uuid: old?.uuid ?? randomUUID(),
      });
    },
    deleteGroup(name) {
      for (const id of groups.get(name)?.instanceIds ?? []) instances.delete(id);
      groups.delete(name);
    },
    updateInstance(id, patch) {
      const inst = instances.get(id);
      if (!inst) throw new Error(`fake aws: no instance ${id}`);
      if ("ip" in patch) inst.ip = patch.ip;
      if (patch.az !== undefined) inst.az = patch.az;
      if (patch.launchTime !== undefined) inst.launchTime = new Date(patch.launchTime);
      if (patch.lifecycleState !== undefined) inst.lifecycleState = patch.lifecycleState;
      if (patch.healthStatus !== undefined) inst.healthStatus = patch.healthStatus;
      if (patch.inEc2 !== undefined) inst.inEc2 = patch.inEc2;
    },
    removeInstance(id) {
      const group = groupOf(id);
      if (group) group.instanceIds = group.instanceIds.filter((x) => x !== id);
      instances.delete(id);
    },
    addLifecycleHook(group, hook) {
      const g = groups.get(group);
      if (!g) throw new Error(`fake aws: no group ${group}`);
      g.hooks.add(hook);
    },
    setPageSize(size) {
      if (size.groups !== undefined) pageSize.groups = size.groups;
      if (size.instances !== undefined) pageSize.instances = size.instances;
    },
    fail(action, kind, times = 1) {
      const queue = faults.get(action) ?? [];
      for (let n = 0; n < times; n++) queue.push(kind);
      faults.set(action, queue);
    },
    count: (action) => calls.filter((c) => c.action === action).length,
    calls,
    describedIds,
    completions,
    protocolErrors,
    resetLog() {
      calls.length = 0;
      describedIds.length = 0;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function memberList(params: Record<string, string>, prefix: string): string[] {
  const out: string[] = [];
  for (let n = 1; params[`${prefix}.${n}`] !== undefined; n++) out.push(params[`${prefix}.${n}`] as string);
  const stray = Object.keys(params).filter((k) => k.startsWith(`${prefix}.`) && !/\.\d+$/.test(k));
  if (stray.length > 0 || Object.keys(params).filter((k) => k.startsWith(`${prefix}.`)).length !== out.length) {
    throw new AwsFault(400, "InvalidParameterValue", `fake aws: ${prefix}.N members are not numbered 1..N`);
  }
  return out;
}

function optionalInt(params: Record<string, string>, name: string, min: number, max: number): number | undefined {
  const text = params[name];
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new AwsFault(400, "ValidationError", `Value '${text}' at '${name}' failed to satisfy constraint: Member must have value between ${min} and ${max}`);
  }
  return value;
}

function required(params: Record<string, string>, name: string): string {
  const value = params[name];
  if (value === undefined || value === "") {
    throw new AwsFault(400, "ValidationError", `1 validation error detected: Value null at '${name}' failed to satisfy constraint: Member must not be null`);
  }
  return value;
}

function requestKey(params: Record<string, string>): string {
  return Object.entries(params)
    .filter(([k]) => k !== "NextToken")
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

function decodeToken(token: string): { action: string; key: string; offset: number } | undefined {
  try {
    const value = JSON.parse(Buffer.from(token, "base64url").toString()) as { action?: unknown; key?: unknown; offset?: unknown };
    if (typeof value.action === "string" && typeof value.key === "string" && typeof value.offset === "number") {
      return { action: value.action, key: value.key, offset: value.offset };
    }
  } catch {
    /* not ours */
  }
  return undefined;
}

/** The service name in the SigV4 credential scope: `Credential=AKID/20250101/eu-west-1/ec2/aws4_request`. */
function signedService(authorization: string | undefined): string | undefined {
  const m = /^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(authorization ?? "");
  return m?.[1];
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString()));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, xml: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n${xml}`;
  res.writeHead(status, { "content-type": "text/xml", "content-length": Buffer.byteLength(body), "x-amzn-requestid": randomUUID() });
  res.end(body);
}

function asgError(fault: AwsFault): string {
  const type = fault.status >= 500 ? "Receiver" : "Sender";
  return (
    `<ErrorResponse xmlns="${ASG_NS}"><Error>${el("Type", type)}${el("Code", fault.code)}${el("Message", fault.message)}</Error>` +
    `${el("RequestId", randomUUID())}</ErrorResponse>`
  );
}

function ec2Error(fault: AwsFault): string {
  return `<Response><Errors><Error>${el("Code", fault.code)}${el("Message", fault.message)}</Error></Errors>${el("RequestID", randomUUID())}</Response>`;
}

function asgMetadata(): string {
  return `<ResponseMetadata>${el("RequestId", randomUUID())}</ResponseMetadata>`;
}

function el(name: string, text: string): string {
  return `<${name}>${escapeXml(text)}</${name}>`;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** By hand: `npm run fake-aws -- --port 4566 --groups fake-asg:3,other:2`. */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: "string", default: "4566" }, groups: { type: "string", default: "fake-asg:3" } } });
  const region = process.env.AWS_REGION ?? "eu-west-1";
  const fake = await startFakeAws({ port: Number(values.port), region });
  let n = 0;
  for (const spec of values.groups.split(",")) {
    const [name = "fake-asg", count = "3"] = spec.split(":");
    const list = Array.from({ length: Number(count) }, () => {
      n += 1;
      return { id: instanceId(n), ip: `127.0.1.${n}`, az: `${region}${"abc"[n % 3]}`, launchTime: Date.UTC(2025, 0, 1, 0, n) };
    });
    fake.setGroup(name, list);
  }
  console.log(`fake AWS (Auto Scaling + EC2) listening on ${fake.url}`);
  for (const [k, v] of Object.entries(fake.env())) console.log(`export ${k}=${v}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
