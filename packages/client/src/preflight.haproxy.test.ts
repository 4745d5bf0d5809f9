import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PreflightError } from "@hsdo/core";
import { startHaproxy, templateBackend, haproxyVersion, backendOf } from "@hsdo/testkit";
import { HaproxyAbsentError, preflight } from "./preflight.ts";
import { RuntimeApi } from "./runtime-api.ts";

const body = [
  templateBackend("be_ok", "s", 4),
  templateBackend("be_small", "t", 2),
  "backend be_mixed",
  "    server static1 127.0.0.1:8081",
  "    server-template m 1-4 127.0.0.2:80 disabled",
  "",
  "backend be_noaddr",
  "    server-template na 1-4 example.invalid:80 disabled init-addr none",
  "",
].join("\n");

test("preflight passes on a ready HAProxy, with a warning on server ids that are not the slot numbers", async (t) => {
  const haproxy = await startHaproxy({ body });
  t.after(() => haproxy.stop());
  const report = await preflight(new RuntimeApi({ socket: haproxy.socket }), {
    size: 4,
    backends: [backendOf("be_ok", "s"), backendOf("be_mixed", "m")],
  });
  // what `show info` says: the version of the binary the test bed runs
  assert.match(report.version, /^\d+\.\d+/);
  assert.equal(report.version, haproxyVersion()?.version);
  assert.deepEqual(report.warnings.length, 2, report.warnings.join("\n"));
  assert.match(report.warnings[0] ?? "", /^backend be_mixed: 4 template servers are declared by IP, .* not its address, .*declare them by name:\n +server-template m 1-4 hsdo-parked\.invalid:1 init-addr last,127\.0\.0\.2 disabled check$/s);
  assert.match(report.warnings[1] ?? "", /^backend be_mixed: m1 has id 2, m2 has id 3, m3 has id 4, \.\.\.; consistent hashing uses server ids/);
});

test("preflight lists every missing backend and server with the line that fixes it", async (t) => {
  const haproxy = await startHaproxy({ body });
  t.after(() => haproxy.stop());
  const api = new RuntimeApi({ socket: haproxy.socket });
  await assert.rejects(
    preflight(api, {
      size: 4,
      backends: [
        backendOf("be_ok", "s"),
        backendOf("be_small", "t", { port: 8080 }),
        backendOf("be_missing", "x"),
        backendOf("be_noaddr", "na"),
        backendOf("be_ok", "wrongprefix"),
      ],
    }),
    (err: unknown) => {
      assert.ok(err instanceof PreflightError);
      assert.equal(
        err.message,
        [
          `HAProxy at ${haproxy.socket} is not ready for hsdo:`,
          "  - backend be_small has 2 of the 4 servers t1..t4 (missing t3..t4); its server-template should read:",
          "          server-template t 1-4 hsdo-parked.invalid:1 init-addr last,127.0.0.2 disabled check",
          "  - backend be_missing does not exist in HAProxy; add:",
          "      backend be_missing",
          "          server-template x 1-4 hsdo-parked.invalid:1 init-addr last,127.0.0.2 disabled check",
          "  - backend be_noaddr: na1..na4 have no IP address, and HAProxy refuses `set server ... addr` on such servers; declare them with an IP placeholder:",
          "          server-template na 1-4 hsdo-parked.invalid:1 init-addr last,127.0.0.2 disabled check",
          "  - backend be_ok has 0 of the 4 servers wrongprefix1..wrongprefix4 (missing wrongprefix1..wrongprefix4); its server-template should read:",
          "          server-template wrongprefix 1-4 hsdo-parked.invalid:1 init-addr last,127.0.0.2 disabled check",
          "(`hsdo haproxy-config` prints every line hsdo expects)",
        ].join("\n"),
      );
      return true;
    },
  );
});

test("preflight names a missing socket path and what to check (HAProxy absent: not an operator error), and a path that is not a socket (one)", async (t) => {
  const haproxy = await startHaproxy({ body });
  t.after(() => haproxy.stop());
  const wrong = join(haproxy.dir, "haproxy.sock");
  await assert.rejects(preflight(new RuntimeApi({ socket: wrong }), { size: 1, backends: [] }), (err: unknown) => {
    // Waited for by a long-running client (preflightWhenUp), exit 1 for --once.
    assert.ok(err instanceof HaproxyAbsentError);
    assert.ok(!(err instanceof PreflightError));
    assert.equal(
      err.message,
      `HAProxy's Runtime API (client.socket) is not answering: socket ${wrong} does not exist: is HAProxy running with \`stats socket ${wrong} level admin\` in its global section?`,
    );
    return true;
  });
  // Linux answers ECONNREFUSED for a directory as for a stale socket: preflight tells them apart.
  await assert.rejects(preflight(new RuntimeApi({ socket: haproxy.dir }), { size: 1, backends: [] }), (err: unknown) => {
    assert.ok(err instanceof PreflightError);
    assert.equal(
      err.message,
      `HAProxy's Runtime API (client.socket) cannot be used: ${haproxy.dir} is a directory, not a socket: point client.socket at HAProxy's stats socket`,
    );
    return true;
  });
});

test("preflight refuses a socket at level operator", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "hsdo-oper-"));
  const operator = join(dir, "operator.sock");
  const haproxy = await startHaproxy({ body, global: [`stats socket ${operator} mode 600 level operator`] });
  t.after(async () => {
    await haproxy.stop();
    await rm(dir, { recursive: true, force: true });
  });
  await assert.rejects(
    preflight(new RuntimeApi({ socket: operator }), { size: 4, backends: [backendOf("be_ok", "s")] }),
    new RegExp(`the socket's level is "operator": hsdo needs \`stats socket ${operator} ... level admin\``),
  );
});

/** A backend of 3 template servers with the given balance lines. */
const algoBackend = (name: string, ...lines: string[]) =>
  [`backend ${name}`, ...lines.map((l) => `    ${l}`), `    server-template ${name}- 1-3 hsdo-parked.invalid:1 init-addr last,127.0.0.2 disabled`, ""].join("\n");

test("preflight refuses a backend whose algorithm refuses weights, naming it and the line to add; dynamic ones pass, weights untouched", async (t) => {
  const haproxy = await startHaproxy({
    body: [
      algoBackend("be_uri", "balance uri"),
      algoBackend("be_uric", "balance uri", "hash-type consistent"),
      algoBackend("be_rr", "balance roundrobin"),
      algoBackend("be_srr", "balance static-rr"),
      algoBackend("be_src", "balance source"),
    ].join("\n"),
  });
  t.after(() => haproxy.stop());
  const api = new RuntimeApi({ socket: haproxy.socket });
  const of = (name: string) => backendOf(name, `${name}-`);
  // A weight set earlier on a server in maint must come out of the check as it was.
  assert.equal(await haproxy.command("set server be_rr/be_rr-1 weight 7"), "\n");
  const weights = async (name: string) => (await haproxy.command(`show servers state ${name}`)).split("\n").slice(2).filter(Boolean).map((l) => l.split(" ").slice(7, 9).join("/"));
  const before = { rr: await weights("be_rr"), uric: await weights("be_uric") };

  const ok = await preflight(api, { size: 3, backends: [of("be_uric"), of("be_rr")] });
  assert.deepEqual(ok.warnings, []);
  assert.deepEqual(await weights("be_rr"), before.rr);
  assert.deepEqual(before.rr, ["7/1", "1/1", "1/1"]);
  assert.deepEqual(await weights("be_uric"), before.uric);

  await assert.rejects(preflight(api, { size: 3, backends: [of("be_uri"), of("be_uric"), of("be_srr"), of("be_src")] }), (err: unknown) => {
    assert.ok(err instanceof PreflightError);
    const refusal = JSON.stringify("Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.");
    assert.equal(
      err.message,
      [
        `HAProxy at ${haproxy.socket} is not ready for hsdo:`,
        `  - backend be_uri: \`balance uri\` with map-based hashing (the default hash-type) is static: HAProxy refuses every weight but 0 and 100% (HAProxy: ${refusal}), so hsdo cannot ramp weights; add:`,
        "      backend be_uri",
        "          hash-type consistent",
        `  - backend be_srr: \`balance static-rr\` is a static algorithm: HAProxy refuses every weight but 0 and 100% (HAProxy: ${refusal}), so hsdo cannot ramp weights; use a dynamic one:`,
        "      backend be_srr",
        "          balance roundrobin",
        `  - backend be_src: \`balance source\` with map-based hashing (the default hash-type) is static: HAProxy refuses every weight but 0 and 100% (HAProxy: ${refusal}), so hsdo cannot ramp weights; add:`,
        "      backend be_src",
        "          hash-type consistent",
        "(`hsdo haproxy-config` prints every line hsdo expects)",
      ].join("\n"),
    );
    return true;
  });
  for (const name of ["be_uri", "be_srr", "be_src"]) assert.deepEqual(await weights(name), ["1/1", "1/1", "1/1"], `${name} unchanged`);
});

test("without a server in maintenance (or without probing), the algo field of show stat is what is known", async (t) => {
  const haproxy = await startHaproxy({ body: [algoBackend("be_uri", "balance uri"), algoBackend("be_srr", "balance static-rr"), algoBackend("be_rr", "balance roundrobin")].join("\n") });
  t.after(() => haproxy.stop());
  const api = new RuntimeApi({ socket: haproxy.socket });
  const of = (name: string) => backendOf(name, `${name}-`);
  // Every server live: nothing to probe without touching traffic.
  for (const name of ["be_uri", "be_rr"]) for (const n of [1, 2, 3]) assert.equal(await haproxy.command(`set server ${name}/${name}-${n} state ready`), "\n");
  const report = await preflight(api, { size: 3, backends: [of("be_uri"), of("be_rr")] });
  assert.deepEqual(report.warnings, [
    "backend be_uri: balance uri refuses weights unless hashing is consistent, and no server is in maintenance to check it harmlessly; make sure `backend be_uri` has `hash-type consistent`",
  ]);
  // static-rr is static whatever else: refused on its name alone, here without the probe (a dry run).
  await assert.rejects(preflight(api, { size: 3, backends: [of("be_srr")], probeWeights: false }), /backend be_srr: `balance static-rr` is a static algorithm: HAProxy refuses every weight but 0 and 100%, so hsdo cannot ramp weights; use a dynamic one:\n {6}backend be_srr\n {10}balance roundrobin/);
});
