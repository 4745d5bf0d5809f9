import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { TABLE_ATTRIBUTE_DEFINITIONS, TABLE_BILLING_MODE, TABLE_KEY_SCHEMA } from "@hsdo/store";
import { ROOT } from "@hsdo/testkit";

// Loaded through require: the package's typings pull the DOM lib into the
// whole program, and this test needs one function of it.
const require = createRequire(import.meta.url);
const hcl2json = require("@cdktf/hcl2json") as { parse(filename: string, contents: string): Promise<unknown> };

type Obj = Record<string, unknown>;

const INFRA = join(ROOT, "infra");
const SRC_DIRS = ["packages/store/src", "packages/server/src", "packages/client/src"];

function isObj(x: unknown): x is Obj {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function obj(x: unknown, what: string): Obj {
  assert.ok(isObj(x), `${what} is an object`);
  return x;
}

/** hcl2json gives every block as a list of bodies; hsdo's files declare each one once. */
function body(x: unknown, what: string): Obj {
  assert.ok(Array.isArray(x) && x.length === 1, `${what} is declared once`);
  return obj(x[0], what);
}

function tfFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (name.startsWith(".")) return [];
    if (statSync(p).isDirectory()) return tfFiles(p);
    return name.endsWith(".tf") ? [p] : [];
  });
}

interface Module {
  resource: Record<string, Record<string, Obj>>;
  data: Record<string, Record<string, Obj>>;
  variable: Record<string, Obj>;
  locals: Obj;
  output: Record<string, Obj>;
  /** Every string of every file, for reference checks. */
  strings: string[];
}

/** Parses every .tf file of infra/ and merges them into one module, refusing duplicates. */
async function loadModule(): Promise<Module> {
  const files = tfFiles(INFRA);
  assert.ok(files.length > 0, "infra/ holds .tf files");
  const mod: Module = { resource: {}, data: {}, variable: {}, locals: {}, output: {}, strings: [] };
  for (const file of files) {
    const name = relative(ROOT, file);
    const json = obj(await hcl2json.parse(name, readFileSync(file, "utf8")), name);
    collectStrings(json, mod.strings);
    for (const [kind, value] of Object.entries(json)) {
      if (kind === "resource" || kind === "data") {
        for (const [type, byName] of Object.entries(obj(value, `${name} ${kind}`))) {
          const into = (mod[kind][type] ??= {});
          for (const [n, bodies] of Object.entries(obj(byName, `${kind} ${type}`))) {
            assert.ok(!(n in into), `${kind} ${type}.${n} is declared once across infra/`);
            into[n] = body(bodies, `${kind} ${type}.${n}`);
          }
        }
      } else if (kind === "variable" || kind === "output") {
        for (const [n, bodies] of Object.entries(obj(value, `${name} ${kind}`))) {
          assert.ok(!(n in mod[kind]), `${kind} ${n} is declared once across infra/`);
          mod[kind][n] = body(bodies, `${kind} ${n}`);
        }
      } else if (kind === "locals") {
        for (const block of value as unknown[]) {
          for (const [n, v] of Object.entries(obj(block, `${name} locals`))) {
            assert.ok(!(n in mod.locals), `local ${n} is declared once across infra/`);
            mod.locals[n] = v;
          }
        }
      }
    }
  }
  return mod;
}

function collectStrings(x: unknown, out: string[]): void {
  if (typeof x === "string") out.push(x);
  else if (Array.isArray(x)) x.forEach((v) => collectStrings(v, out));
  else if (isObj(x)) Object.values(x).forEach((v) => collectStrings(v, out));
}

interface Statement {
  sid: string;
  effect: string;
  actions: string[];
  /** A list of literal ARNs, or one Terraform expression such as "${local.asg_arns}". */
  resources: string[] | string;
  /** True when the statement only exists under a condition (a dynamic block). */
  conditional: boolean;
}

function toStatement(raw: Obj, conditional: boolean): Statement {
  assert.ok(!("not_actions" in raw) && !("not_resources" in raw), "no statement uses not_actions or not_resources");
  const actions = raw.actions;
  assert.ok(Array.isArray(actions) && actions.every((a) => typeof a === "string"), `statement ${String(raw.sid)} lists its actions literally`);
  const resources = raw.resources;
  assert.ok(typeof resources === "string" || (Array.isArray(resources) && resources.every((r) => typeof r === "string")));
  return { sid: String(raw.sid ?? ""), effect: String(raw.effect ?? "Allow"), actions: actions as string[], resources: resources as string[] | string, conditional };
}

/** The statements of an aws_iam_policy_document, plain and dynamic ones alike. */
function statements(doc: Obj): Statement[] {
  const out: Statement[] = [];
  for (const raw of (doc.statement as unknown[] | undefined) ?? []) out.push(toStatement(obj(raw, "statement"), false));
  const dynamic = isObj(doc.dynamic) ? doc.dynamic : {};
  for (const dyn of (dynamic.statement as unknown[] | undefined) ?? []) {
    const content = obj(dyn, "dynamic statement").content;
    out.push(toStatement(body(content, "dynamic statement content"), true));
  }
  return out;
}

const allowed = (sts: Statement[]) => new Set(sts.filter((s) => s.effect === "Allow").flatMap((s) => s.actions));

/** The policy document a named aws_iam_policy is built from. */
function policyDocument(mod: Module, name: string): Statement[] {
  const policy = mod.resource.aws_iam_policy?.[name];
  assert.ok(policy, `resource aws_iam_policy.${name} exists`);
  return documentStatements(mod, String(policy.policy), `aws_iam_policy.${name}.policy`);
}

/** The statements of `${data.aws_iam_policy_document.X.json}`, with those of its source_policy_documents. */
function documentStatements(mod: Module, ref: string, where: string): Statement[] {
  const m = /^\$\{data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)\.json\}$/.exec(ref);
  assert.ok(m, `${where} is an aws_iam_policy_document (got ${ref})`);
  const doc = mod.data.aws_iam_policy_document?.[m[1]!];
  assert.ok(doc, `data aws_iam_policy_document.${m[1]} exists`);
  const sources = (doc.source_policy_documents as unknown[] | undefined) ?? [];
  return [...sources.flatMap((src) => documentStatements(mod, String(src), `${m[1]}.source_policy_documents`)), ...statements(doc)];
}

const TABLE_ARN = "${aws_dynamodb_table.hsdo.arn}";

/**
 * The AWS operations hsdo's code sends at run time, by IAM action, read from
 * the `new XCommand(` calls of each source file and the SDK package the
 * command is imported from. Table creation (`hsdo table create`) is an admin
 * path that this Terraform replaces, so table.ts is left out.
 */
function sdkActions(files: string[]): Set<string> {
  const service: Record<string, string> = {
    "@aws-sdk/client-dynamodb": "dynamodb",
    "@aws-sdk/lib-dynamodb": "dynamodb",
    "@aws-sdk/client-auto-scaling": "autoscaling",
    "@aws-sdk/client-ec2": "ec2",
  };
  // lib-dynamodb's document commands are named after the operation without "Item".
  const docOps: Record<string, string> = { Get: "GetItem", Put: "PutItem", Update: "UpdateItem", Delete: "DeleteItem", BatchGet: "BatchGetItem", BatchWrite: "BatchWriteItem" };
  const out = new Set<string>();
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    const from = new Map<string, string>();
    for (const m of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+"([^"]+)"/g)) {
      for (const name of m[1]!.split(",")) {
        const id = name.trim().replace(/^type\s+/, "").split(/\s+as\s+/)[0]!;
        if (id) from.set(id, m[2]!);
      }
    }
    for (const m of text.matchAll(/new\s+([A-Za-z]+)Command\s*\(/g)) {
      const pkg = from.get(`${m[1]}Command`);
      const svc = pkg ? service[pkg] : undefined;
      assert.ok(svc, `${relative(ROOT, file)}: ${m[1]}Command is imported from a known AWS SDK package (got ${pkg ?? "nothing"})`);
      const op = pkg === "@aws-sdk/lib-dynamodb" ? (docOps[m[1]!] ?? m[1]!) : m[1]!;
      out.add(`${svc}:${op}`);
    }
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  const abs = join(ROOT, dir);
  return readdirSync(abs, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !/(^|\/)(testing|testkit)\.ts$/.test(f))
    .map((f) => join(abs, f));
}

test("every .tf file of infra/ parses, and every reference names something declared", async () => {
  const mod = await loadModule();
  const text = mod.strings.join("\n");
  for (const [, name] of text.matchAll(/\bvar\.([A-Za-z0-9_-]+)/g)) assert.ok(name! in mod.variable, `variable ${name} is declared`);
  for (const [, name] of text.matchAll(/\blocal\.([A-Za-z0-9_-]+)/g)) assert.ok(name! in mod.locals, `local ${name} is declared`);
  for (const [, type, name] of text.matchAll(/\bdata\.([a-z0-9_]+)\.([A-Za-z0-9_-]+)/g)) {
    assert.ok(mod.data[type!]?.[name!], `data ${type}.${name} is declared`);
  }
  for (const [, type, name] of text.matchAll(/(?<![.\w])(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)\.(?:arn|name|id)\b/g)) {
    assert.ok(mod.resource[type!]?.[name!], `resource ${type}.${name} is declared`);
  }
  for (const name of Object.keys(mod.variable)) {
    assert.match(text, new RegExp(`\\bvar\\.${name}\\b`), `variable ${name} is used somewhere`);
    assert.ok(typeof mod.variable[name]!.description === "string", `variable ${name} has a description`);
  }
  for (const [name, out] of Object.entries(mod.output)) {
    assert.ok(typeof out.description === "string" && out.description.length > 10, `output ${name} has a description`);
  }
});

test("works with AWS provider 5 and 6: no data.aws_region attribute (6 deprecates name, 5 lacks region); the region is the table's", async () => {
  const mod = await loadModule();
  const versions = readFileSync(join(INFRA, "versions.tf"), "utf8");
  assert.match(versions, /version\s*=\s*">= 5\.0, < 7\.0"/, "the provider constraint admits 5 and 6");
  assert.equal(mod.data.aws_region, undefined, "no aws_region data source");
  for (const s of mod.strings) assert.doesNotMatch(s, /data\.aws_region\./, `no data.aws_region reference: ${s}`);
  assert.equal(mod.locals.region, '${split(":", aws_dynamodb_table.hsdo.arn)[3]}', "the region is read from the table's ARN");
  const outputs = readFileSync(join(INFRA, "outputs.tf"), "utf8");
  assert.match(outputs, /AWS_REGION\s*=\s*local\.region/, "AWS_REGION for hsdo is the table's region");
});

test("the table has the key schema, attributes and billing mode the store creates", async () => {
  const mod = await loadModule();
  const tables = Object.entries(mod.resource.aws_dynamodb_table ?? {});
  assert.equal(tables.length, 1, "infra/ declares one DynamoDB table");
  const [, table] = tables[0]!;

  const keyOf = (type: "HASH" | "RANGE") => TABLE_KEY_SCHEMA.find((k) => k.KeyType === type)?.AttributeName;
  assert.equal(TABLE_KEY_SCHEMA.length, 2, "the store's key schema has a partition and a sort key");
  assert.equal(table.hash_key, keyOf("HASH"), "hash_key is the store's partition key");
  assert.equal(table.range_key, keyOf("RANGE"), "range_key is the store's sort key");
  // docs/ARCHITECTURE.md, "The table": partition key `pool` (S), sort key `slot` (N).
  assert.deepEqual([table.hash_key, table.range_key], ["pool", "slot"]);

  const attributes = (table.attribute as Obj[]).map((a) => ({ AttributeName: a.name, AttributeType: a.type }));
  const sortByName = (xs: { AttributeName?: unknown }[]) => [...xs].sort((a, b) => String(a.AttributeName).localeCompare(String(b.AttributeName)));
  assert.deepEqual(sortByName(attributes), sortByName([...TABLE_ATTRIBUTE_DEFINITIONS]), "attribute definitions match the store's");
  assert.deepEqual(sortByName(attributes), [
    { AttributeName: "pool", AttributeType: "S" },
    { AttributeName: "slot", AttributeType: "N" },
  ]);

  assert.equal(table.billing_mode, TABLE_BILLING_MODE);
  assert.equal(table.billing_mode, "PAY_PER_REQUEST");
  assert.ok(!("read_capacity" in table) && !("write_capacity" in table), "on demand: no provisioned capacity");
  assert.ok(!("ttl" in table), "no TTL: items are never expired behind the server's back");
});

test("point-in-time recovery and deletion protection are wired to boolean variables", async () => {
  const mod = await loadModule();
  const [table] = Object.values(mod.resource.aws_dynamodb_table ?? {});
  assert.ok(table);
  const pitr = body(table.point_in_time_recovery, "point_in_time_recovery");
  const pitrVar = /^\$\{var\.([a-z_]+)\}$/.exec(String(pitr.enabled))?.[1];
  const protVar = /^\$\{var\.([a-z_]+)\}$/.exec(String(table.deletion_protection_enabled))?.[1];
  assert.ok(pitrVar, `point_in_time_recovery.enabled is a variable (got ${String(pitr.enabled)})`);
  assert.ok(protVar, `deletion_protection_enabled is a variable (got ${String(table.deletion_protection_enabled)})`);
  for (const name of [pitrVar, protVar]) {
    const v = mod.variable[name];
    assert.ok(v, `variable ${name} is declared`);
    assert.equal(v.type, "${bool}", `variable ${name} is a bool`);
    assert.equal(v.default, true, `variable ${name} is on by default (production tables keep backups and refuse deletion)`);
  }
});

/** The start-up check (checkTable in table.ts, called by the cli for --server, --client and status) sends DescribeTable. */
const STARTUP_CHECK = "dynamodb:DescribeTable";

test("the client policy allows DescribeTable, GetItem and Query on the table, nothing else", async () => {
  const mod = await loadModule();
  const sts = policyDocument(mod, "client");
  assert.deepEqual([...allowed(sts)].sort(), [STARTUP_CHECK, "dynamodb:GetItem", "dynamodb:Query"]);
  assert.match(readFileSync(join(ROOT, "packages/cli/src/commands/run.ts"), "utf8"), /checkDynamoTable\(/, "run.ts does the start-up check");
  for (const s of sts) {
    assert.equal(s.effect, "Allow");
    assert.deepEqual(s.resources, [TABLE_ARN], `statement ${s.sid} is limited to the table`);
  }
  // The client reads through the store's SlotReader; whatever that sends must be allowed.
  const used = sdkActions([join(ROOT, "packages/store/src/reader.ts"), ...sourceFiles("packages/client/src")]);
  for (const action of used) assert.ok(allowed(sts).has(action), `the client's ${action} is allowed`);
  assert.ok(used.has("dynamodb:GetItem") && used.has("dynamodb:Query"), "the reader's own calls were found");
});

test("the server policy covers what the server sends, with CompleteLifecycleAction limited to the watched groups", async () => {
  const mod = await loadModule();
  const sts = policyDocument(mod, "server");
  const actions = allowed(sts);
  const expected = [
    "autoscaling:CompleteLifecycleAction",
    "autoscaling:DescribeAutoScalingGroups",
    STARTUP_CHECK,
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
    "ec2:DescribeInstances",
  ];
  assert.deepEqual([...actions].sort(), expected);

  const used = sdkActions([
    // table.ts creates tables (development); hsdo-table.ts scans HSDO's table for `hsdo import-hsdo`, an operator's command, never the server's.
    ...sourceFiles("packages/store/src").filter((f) => !f.endsWith("/table.ts") && !f.endsWith("/hsdo-table.ts")),
    ...sourceFiles("packages/server/src"),
  ]);
  for (const action of used) assert.ok(actions.has(action), `the server's ${action} is allowed by the server policy`);

  for (const s of sts.filter((x) => x.actions.some((a) => a.startsWith("dynamodb:")))) {
    assert.ok(s.actions.every((a) => a.startsWith("dynamodb:")), `statement ${s.sid} mixes no other service with DynamoDB`);
    assert.deepEqual(s.resources, [TABLE_ARN], `statement ${s.sid} is limited to the table`);
  }

  const lifecycle = sts.filter((s) => s.actions.includes("autoscaling:CompleteLifecycleAction"));
  assert.equal(lifecycle.length, 1);
  const [stmt] = lifecycle;
  assert.deepEqual(stmt!.actions, ["autoscaling:CompleteLifecycleAction"], "CompleteLifecycleAction has a statement of its own");
  assert.equal(stmt!.resources, "${local.asg_arns}", "CompleteLifecycleAction is limited to the ARNs of the watched groups");
  const arns = String(mod.locals.asg_arns);
  assert.match(arns, /for\s+(\w+)\s+in\s+var\.asg_names\s*:/, "the ARNs are built from var.asg_names");
  assert.match(arns, /:autoscaling:\$\{local\.region\}:\$\{data\.aws_caller_identity\.current\.account_id\}:autoScalingGroup:\*:autoScalingGroupName\/\$\{name\}/);
  assert.ok(stmt!.conditional, "the statement exists only when there are groups to watch (an empty resource list is invalid IAM)");

  // Describe calls accept no resource-level permission; nothing else may use "*".
  for (const s of sts) {
    const wild = typeof s.resources !== "string" && s.resources.includes("*");
    if (wild) {
      assert.deepEqual([...s.actions].sort(), ["autoscaling:DescribeAutoScalingGroups", "ec2:DescribeInstances"], `only describe calls use "*" (${s.sid})`);
    }
  }
});

test("no policy grants a wildcard action, and every policy comes from a checked document", async () => {
  const mod = await loadModule();
  const docs = Object.entries(mod.data.aws_iam_policy_document ?? {});
  assert.ok(docs.length >= 2, "server and client policy documents exist");
  for (const [name, doc] of docs) {
    for (const s of statements(doc)) {
      assert.equal(s.effect, "Allow", `${name}/${s.sid}: every statement is an explicit Allow`);
      assert.ok(s.sid !== "", `${name}: every statement has a sid`);
      for (const action of s.actions) {
        assert.match(action, /^[a-z0-9-]+:[A-Za-z]+$/, `${name}/${s.sid}: ${action} is one named action, no wildcard`);
      }
    }
  }
  // Inline policies written as JSON strings would escape the checks above.
  for (const [type, byName] of Object.entries(mod.resource)) {
    for (const [name, res] of Object.entries(byName)) {
      if ("policy" in res) {
        assert.match(String(res.policy), /^\$\{data\.aws_iam_policy_document\.\w+\.json\}$/, `${type}.${name} builds its policy from a checked document`);
      }
    }
  }
});

test("the lifecycle hook is opt-in (default off), holds terminating instances of the watched groups and continues by default", async () => {
  const mod = await loadModule();
  const optIn = mod.variable.lifecycle_hook;
  assert.ok(optIn, "variable lifecycle_hook exists");
  assert.equal(optIn.type, "${bool}");
  assert.equal(optIn.default, false, "off unless asked for");
  const on = String(mod.locals.lifecycle_hook);
  assert.match(on, /var\.lifecycle_hook\b/);
  assert.match(on, /length\(var\.asg_names\) > 0/);
  const hook = mod.resource.aws_autoscaling_lifecycle_hook?.drain;
  assert.ok(hook, "resource aws_autoscaling_lifecycle_hook.drain exists");
  assert.match(String(hook.for_each), /local\.lifecycle_hook \?/, "the hook exists only when opted in");
  // The permission and hsdo's setting follow the same switch.
  const server = mod.data.aws_iam_policy_document?.server;
  const dyn = ((server?.dynamic as Obj | undefined)?.statement as Obj[] | undefined) ?? [];
  const complete = dyn.find((d) => JSON.stringify(d).includes("CompleteLifecycleAction"));
  assert.match(String(complete?.for_each), /^\$\{local\.lifecycle_hook \?/, "CompleteLifecycleAction is granted only when opted in");
  assert.match(readFileSync(join(INFRA, "outputs.tf"), "utf8"), /HSDO_SERVER_AWS_LIFECYCLE_HOOK = local\.lifecycle_hook \?/, "HSDO_SERVER_AWS_LIFECYCLE_HOOK only when opted in");
  assert.equal(hook.lifecycle_transition, "autoscaling:EC2_INSTANCE_TERMINATING");
  assert.equal(hook.default_result, "CONTINUE", "a missing hsdo server never blocks a scale-in for good");
  assert.match(String(hook.for_each), /var\.asg_names/, "one hook per watched group");
  assert.equal(hook.autoscaling_group_name, "${each.value}");
  assert.equal(hook.name, "${var.lifecycle_hook_name}", "the hook's name is the one the server completes (server.aws.lifecycleHook)");
  assert.equal(hook.heartbeat_timeout, "${var.lifecycle_hook_heartbeat_timeout}");
});
