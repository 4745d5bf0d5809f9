import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";

/**
 * A wire-level fake of the Consul HTTP API parts hsdo uses:
 * `/v1/health/service/<name>` (with `index`/`wait` blocking queries,
 * `passing`, repeated `tag`, `dc`, `X-Consul-Token`) and `/v1/status/leader`.
 * Entries are shaped like Consul's own. Anything else answers 404 and is
 * recorded in `protocolErrors`.
 *
 * Known differences from Consul: no wait jitter (Consul adds up to wait/16),
 * one raft index for every change, a service's index is the index of its
 * last change (Consul's is close: the max ModifyIndex of its rows), and an
 * index below the client's (after `setIndex`) answers at once.
 */

export type CheckStatus = "passing" | "warning" | "critical";

export interface FakeConsulRegistration {
  service: string;
  node: string;
  /** Node address. */
  address: string;
  /** Service ID; defaults to the service name. */
  id?: string;
  serviceAddress?: string;
  port?: number;
  tags?: string[];
  nodeMeta?: Record<string, string>;
  serviceMeta?: Record<string, string>;
  /** Status of the service's own check. */
  status?: CheckStatus;
}

export interface ConsulRequest {
  path: string;
  service?: string;
  query: Record<string, string[]>;
  token?: string;
  status: number;
  /** ms the request was held (blocking queries). */
  heldMs: number;
}

export interface FakeConsul {
  readonly url: string;
  readonly port: number;
  readonly datacenter: string;
  register(reg: FakeConsulRegistration): void;
  deregister(node: string, serviceId: string): void;
  setCheck(node: string, serviceId: string, status: CheckStatus): void;
  /** The node's serfHealth check, shared by every service on that node. */
  setNodeCheck(node: string, status: CheckStatus): void;
  /** Current raft index. */
  index(): number;
  /** Moves the raft index (a snapshot restore or a new cluster makes it go backwards); wakes blocked queries. */
  setIndex(index: number): void;
  /** The next `times` health requests answer this HTTP status (500: "rpc error"). */
  fail(times?: number, status?: number): void;
  /** Drops the faults not yet served. */
  heal(): void;
  setLeader(leader: boolean): void;
  /** When set, requests must carry this X-Consul-Token. */
  requireToken(token: string | undefined): void;
  /**
   * A token that lost service:read: Consul's ACL filter answers health
   * queries with [] and HTTP 200 (and X-Consul-Results-Filtered-By-ACLs),
   * not with an error. Wakes blocked queries.
   */
  filterByAcl(on: boolean): void;
  /** Health requests for `service` (all services when omitted), answered or in flight. */
  count(service?: string): number;
  /** Requests currently held by a blocking query. */
  blocked(): number;
  readonly requests: ConsulRequest[];
  readonly protocolErrors: string[];
  stop(): Promise<void>;
}

interface Row {
  reg: Required<Omit<FakeConsulRegistration, "serviceAddress">> & { serviceAddress: string };
  createIndex: number;
  modifyIndex: number;
  checkIndex: number;
}

interface Waiter {
  service: string;
  after: number;
  wake: () => void;
}

const MAX_WAIT_MS = 600_000;
const DEFAULT_WAIT_MS = 300_000;

export async function startFakeConsul(options: { datacenter?: string } = {}): Promise<FakeConsul> {
  const datacenter = options.datacenter ?? "dc1";
  const rows = new Map<string, Row>();
  const nodeStatus = new Map<string, { status: CheckStatus; index: number }>();
  const nodeIds = new Map<string, string>();
  const serviceIndex = new Map<string, number>();
  const waiters = new Set<Waiter>();
  const requests: ConsulRequest[] = [];
  const protocolErrors: string[] = [];
  let raft = 10;
  let failures: number[] = [];
  let leader = true;
  let token: string | undefined;
  let aclFiltered = false;

  const key = (node: string, id: string) => `${node}\u0000${id}`;

  function indexOf(service: string): number {
    return serviceIndex.get(service) ?? raft;
  }

  function touch(services: Iterable<string>): number {
    raft += 1;
    for (const s of services) serviceIndex.set(s, raft);
    wakeAll();
    return raft;
  }

  function wakeAll(): void {
    for (const w of [...waiters]) if (indexOf(w.service) > w.after || indexOf(w.service) < w.after) w.wake();
  }

  function servicesOnNode(node: string): string[] {
    return [...rows.values()].filter((r) => r.reg.node === node).map((r) => r.reg.service);
  }

  function entry(row: Row): unknown {
    const { reg } = row;
    const node = nodeStatus.get(reg.node) ?? { status: "passing" as CheckStatus, index: row.createIndex };
    const check = (fields: Record<string, unknown>) => ({
      Node: reg.node,
      Notes: "",
      Output: "",
      Type: "",
      Namespace: "default",
      ExposedPort: 0,
      Definition: {},
      ...fields,
    });
    return {
      Node: {
        ID: nodeIds.get(reg.node),
        Node: reg.node,
        Address: reg.address,
        Datacenter: datacenter,
        TaggedAddresses: { lan: reg.address, wan: reg.address },
        Meta: reg.nodeMeta,
        CreateIndex: row.createIndex,
        ModifyIndex: row.createIndex,
      },
      Service: {
        ID: reg.id,
        Service: reg.service,
        Tags: reg.tags,
        Address: reg.serviceAddress,
        TaggedAddresses: reg.serviceAddress ? { lan_ipv4: { Address: reg.serviceAddress, Port: reg.port } } : {},
        Meta: reg.serviceMeta,
        Port: reg.port,
        Weights: { Passing: 1, Warning: 1 },
        EnableTagOverride: false,
        Proxy: { Mode: "", MeshGateway: {}, Expose: {} },
        Connect: {},
        PeerName: "",
        Namespace: "default",
        Partition: "default",
        CreateIndex: row.createIndex,
        ModifyIndex: row.modifyIndex,
      },
      Checks: [
        check({
          CheckID: "serfHealth",
          Name: "Serf Health Status",
          Status: node.status,
          Output: node.status === "passing" ? "Agent alive and reachable" : "Agent not live or unreachable",
          ServiceID: "",
          ServiceName: "",
          ServiceTags: [],
          CreateIndex: row.createIndex,
          ModifyIndex: node.index,
        }),
        check({
          CheckID: `service:${reg.id}`,
          Name: `Service '${reg.service}' check`,
          Status: reg.status,
          ServiceID: reg.id,
          ServiceName: reg.service,
          ServiceTags: reg.tags,
          CreateIndex: row.createIndex,
          ModifyIndex: row.checkIndex,
        }),
      ],
    };
  }

  function answer(service: string, query: URLSearchParams): unknown[] {
    if (aclFiltered) return [];
    const tags = query.getAll("tag");
    const passing = query.has("passing") && query.get("passing") !== "false" && query.get("passing") !== "0";
    return [...rows.values()]
      .filter((r) => r.reg.service === service)
      .filter((r) => tags.every((t) => r.reg.tags.includes(t)))
      .filter((r) => !passing || (r.reg.status === "passing" && (nodeStatus.get(r.reg.node)?.status ?? "passing") === "passing"))
      .sort((a, b) => (a.reg.node < b.reg.node ? -1 : a.reg.node > b.reg.node ? 1 : a.reg.id < b.reg.id ? -1 : 1))
      .map(entry);
  }

  async function health(res: ServerResponse, service: string, query: URLSearchParams, log: ConsulRequest): Promise<void> {
    const failure = failures.shift();
    if (failure !== undefined) return text(res, failure, "rpc error making call: rpc error: No cluster leader");
    const dc = query.get("dc");
    if (dc && dc !== datacenter) return text(res, 500, "No path to datacenter");
    const indexParam = query.get("index");
    const after = indexParam === null ? 0 : Number(indexParam);
    if (!Number.isInteger(after) || after < 0) return text(res, 400, `Invalid index: ${indexParam}`);
    const waitParam = query.get("wait");
    const waitMs = waitParam === null ? DEFAULT_WAIT_MS : parseGoDuration(waitParam);
    if (waitMs === undefined) return text(res, 400, `Invalid wait time: ${waitParam}`);
    // Blocks while nothing changed past the index the client knows, as Consul does.
    if (after > 0 && indexOf(service) === after) {
      const started = Date.now();
      await new Promise<void>((resolve) => {
        const waiter: Waiter = { service, after, wake: done };
        const timer = setTimeout(done, Math.min(waitMs, MAX_WAIT_MS));
        res.once("close", done);
        waiters.add(waiter);
        function done() {
          clearTimeout(timer);
          res.off("close", done);
          waiters.delete(waiter);
          resolve();
        }
      });
      log.heldMs = Date.now() - started;
      if (res.destroyed) return;
    }
    const headers: Record<string, string> = { "X-Consul-Index": String(indexOf(service)), "X-Consul-Knownleader": "true", "X-Consul-Lastcontact": "0" };
    if (aclFiltered) headers["X-Consul-Results-Filtered-By-ACLs"] = "true";
    json(res, 200, answer(service, query), headers);
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://consul");
    const query = url.searchParams;
    const log: ConsulRequest = { path: url.pathname, query: {}, status: 0, heldMs: 0 };
    for (const k of new Set(query.keys())) log.query[k] = query.getAll(k);
    const sent = req.headers["x-consul-token"];
    if (typeof sent === "string") log.token = sent;
    requests.push(log);
    res.on("finish", () => (log.status = res.statusCode));
    if (req.method !== "GET") {
      protocolErrors.push(`fake consul: ${req.method} ${url.pathname}`);
      return text(res, 405, "method not allowed");
    }
    if (token !== undefined && sent !== token) return text(res, 403, "ACL not found");
    const m = /^\/v1\/health\/service\/([^/]+)$/.exec(url.pathname);
    if (m) {
      log.service = decodeURIComponent(m[1] ?? "");
      const known = new Set(["index", "wait", "passing", "tag", "dc", "stale", "consistent", "near", "filter", "ns", "partition"]);
      const unknown = [...query.keys()].filter((k) => !known.has(k));
      if (unknown.length > 0) protocolErrors.push(`fake consul: unknown query parameter(s) ${unknown.join(", ")}`);
      return health(res, log.service, query, log);
    }
    if (url.pathname === "/v1/status/leader") return json(res, 200, leader ? "127.0.0.1:8300" : "");
    protocolErrors.push(`fake consul: unsupported ${req.method} ${url.pathname}`);
    text(res, 404, `unsupported by the fake: ${url.pathname}`);
  }

  const server = createServer((req, res) => {
    onRequest(req, res).catch((err: unknown) => {
      protocolErrors.push(`fake consul: ${String(err)}`);
      if (!res.headersSent) text(res, 500, String(err));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    datacenter,
    register(reg) {
      const id = reg.id ?? reg.service;
      const k = key(reg.node, id);
      const old = rows.get(k);
      if (!nodeIds.has(reg.node)) nodeIds.set(reg.node, randomUUID());
      const services = new Set([reg.service, ...(old ? [old.reg.service] : [])]);
      const index = touch(services);
      rows.set(k, {
        reg: {
          service: reg.service,
          node: reg.node,
          address: reg.address,
          id,
          serviceAddress: reg.serviceAddress ?? "",
          port: reg.port ?? 0,
          tags: reg.tags ?? [],
          nodeMeta: reg.nodeMeta ?? {},
          serviceMeta: reg.serviceMeta ?? {},
          status: reg.status ?? "passing",
        },
        createIndex: old?.createIndex ?? index,
        modifyIndex: index,
        checkIndex: index,
      });
    },
    deregister(node, serviceId) {
      const row = rows.get(key(node, serviceId));
      if (!row) throw new Error(`fake consul: ${node}/${serviceId} is not registered`);
      rows.delete(key(node, serviceId));
      touch([row.reg.service]);
    },
    setCheck(node, serviceId, status) {
      const row = rows.get(key(node, serviceId));
      if (!row) throw new Error(`fake consul: ${node}/${serviceId} is not registered`);
      row.reg.status = status;
      row.checkIndex = touch([row.reg.service]);
    },
    setNodeCheck(node, status) {
      const index = touch(servicesOnNode(node));
      nodeStatus.set(node, { status, index });
    },
    index: () => raft,
    setIndex(index) {
      raft = index;
      for (const s of serviceIndex.keys()) serviceIndex.set(s, Math.min(serviceIndex.get(s) ?? index, index));
      wakeAll();
    },
    fail(times = 1, status = 500) {
      failures = [...failures, ...Array.from({ length: times }, () => status)];
    },
    heal() {
      failures = [];
    },
    setLeader(value) {
      leader = value;
    },
    requireToken(value) {
      token = value;
    },
    filterByAcl(on) {
      aclFiltered = on;
      touch(new Set([...rows.values()].map((r) => r.reg.service)));
    },
    count: (service) => requests.filter((r) => r.service !== undefined && (service === undefined || r.service === service)).length,
    blocked: () => waiters.size,
    requests,
    protocolErrors,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const w of [...waiters]) w.wake();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Go's time.ParseDuration for the forms clients send: `30s`, `500ms`, `1m30s`, `1.5s`. */
export function parseGoDuration(text: string): number | undefined {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * (units[m[2] ?? ""] ?? 0);
    consumed = re.lastIndex;
  }
  return consumed === text.length && text.length > 0 ? total : undefined;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data), ...headers });
  res.end(data);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
}
