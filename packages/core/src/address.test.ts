import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { addressClass, ipBytes } from "./address.ts";
import { isIpLiteral, targetAddressProblem, targetProblems } from "./validate.ts";

const REFUSED: [addr: string, kind: string][] = [
  ["127.0.0.1", "loopback"],
  ["127.255.255.254", "loopback"],
  ["::1", "loopback"],
  ["0:0:0:0:0:0:0:1", "loopback"],
  ["::ffff:127.0.0.1", "loopback"],
  ["::ffff:7f00:2", "loopback"],
  ["169.254.169.254", "link-local"],
  ["169.254.0.1", "link-local"],
  ["::ffff:169.254.169.254", "link-local"],
  ["::ffff:a9fe:a9fe", "link-local"],
  ["64:ff9b::169.254.169.254", "link-local"],
  ["fe80::1", "link-local"],
  ["FE80::1", "link-local"],
  ["febf:ffff::1", "link-local"],
  ["fe80::1%lo", "link-local"],
  ["fd00:ec2::254", "aws-reserved"],
  ["0.0.0.0", "unspecified"],
  ["::", "unspecified"],
  ["::ffff:0.0.0.0", "unspecified"],
  ["0.1.2.3", "this-network"],
  ["224.0.0.1", "multicast"],
  ["239.255.255.255", "multicast"],
  ["ff02::1", "multicast"],
  ["::ffff:224.0.0.1", "multicast"],
  ["255.255.255.255", "broadcast"],
  ["240.0.0.1", "reserved"],
];

const HOSTS = ["10.0.0.1", "172.16.3.4", "192.168.1.254", "8.8.8.8", "126.255.255.255", "128.0.0.1", "169.253.255.255", "169.255.0.1", "223.255.255.255", "2001:db8::2", "fd00::1", "fd00:ec3::254", "fec0::1", "::ffff:10.0.0.1", "64:ff9b::10.0.0.1", "fc00::1"];

test("addressClass names the range of every address that is never a target", () => {
  for (const [addr, kind] of REFUSED) assert.equal(addressClass(addr)?.kind, kind, addr);
  for (const addr of HOSTS) assert.equal(addressClass(addr), undefined, addr);
  for (const no of ["", "localhost", "10.0.0", "1.2.3.4.5"]) assert.equal(addressClass(no), undefined, no);
});

test("ipBytes reads every IPv6 spelling of the same address alike", () => {
  const same = ["::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "0:0:0:0:0:ffff:a9fe:a9fe", "0::ffff:169.254.169.254"];
  for (const s of same) assert.deepEqual(ipBytes(s), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 169, 254, 169, 254], s);
  assert.deepEqual(ipBytes("2001:db8::2"), [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
  assert.deepEqual(ipBytes("1::"), [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(ipBytes("not an ip"), undefined);
});

test("targetAddressProblem says why, and allowLoopback allows loopback and nothing else", () => {
  assert.equal(
    targetAddressProblem("169.254.169.254"),
    "addr 169.254.169.254 is link-local (the instance metadata service lives there): never a target",
  );
  assert.match(targetAddressProblem("127.0.0.1")!, /^addr 127\.0\.0\.1 is loopback .*: never a target \(allowLoopback: true allows it/);
  for (const [addr, kind] of REFUSED) {
    assert.match(targetAddressProblem(addr) ?? "", /never a target/, addr);
    const allowed = targetAddressProblem(addr, { allowLoopback: true });
    if (kind === "loopback") assert.equal(allowed, undefined, `${addr} with allowLoopback`);
    else assert.match(allowed ?? "", /never a target/, `${addr} stays refused with allowLoopback`);
  }
  for (const addr of HOSTS) assert.equal(targetAddressProblem(addr), undefined, addr);
  for (const bad of ["", "origin.example.com", "10.0.0.1; shutdown sessions", 42, undefined]) {
    assert.match(targetAddressProblem(bad, { allowLoopback: true }) ?? "", /is not an IP address/, String(bad));
  }
  assert.match(targetAddressProblem("fe80::1%lo; x") ?? "", /^addr "fe80::1%lo; x" is link-local/, "odd values are quoted");
});

test("targetProblems keeps a ready target at a refused address out; the knob allows loopback only", () => {
  const base = { id: "i-1", addr: "169.254.169.254", group: "web", az: "a", launchedAt: 0, health: "ready" as const };
  assert.match(targetProblems(base).join(), /link-local/);
  assert.match(targetProblems(base, { allowLoopback: true }).join(), /link-local/);
  assert.match(targetProblems({ ...base, addr: "127.0.0.5" }).join(), /loopback/);
  assert.deepEqual(targetProblems({ ...base, addr: "127.0.0.5" }, { allowLoopback: true }), []);
  assert.deepEqual(targetProblems({ ...base, health: "pending" }), [], "a pending target is not published at its address");
});

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));

test("property: an IPv4 address is refused exactly when it is in a refused range, and its mapped form alike", () => {
  fc.assert(
    fc.property(v4, fc.boolean(), ([a, b, c, d], allowLoopback) => {
      const addr = `${a}.${b}.${c}.${d}`;
      const loopback = a === 127;
      const never = a === 0 || (a === 169 && b === 254) || a >= 224;
      const problem = targetAddressProblem(addr, { allowLoopback });
      assert.equal(problem !== undefined, never || (loopback && !allowLoopback), `${addr} ${problem}`);
      const hex = (x: number, y: number) => ((x << 8) | y).toString(16);
      for (const mapped of [`::ffff:${addr}`, `::ffff:${hex(a, b)}:${hex(c, d)}`]) {
        assert.equal(targetAddressProblem(mapped, { allowLoopback }) === undefined, problem === undefined, mapped);
      }
    }),
    { numRuns: 2000 },
  );
});

test("property: every address targetAddressProblem accepts is an IP literal HAProxy takes", () => {
  const v6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(":"));
  fc.assert(
    fc.property(fc.oneof(v4.map((o) => o.join(".")), v6, fc.string()), fc.boolean(), (addr, allowLoopback) => {
      if (targetAddressProblem(addr, { allowLoopback }) === undefined) assert.ok(isIpLiteral(addr), addr);
      const b = ipBytes(addr);
      if (b && b.length === 16 && b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) assert.notEqual(targetAddressProblem(addr, { allowLoopback }), undefined);
    }),
    { numRuns: 2000 },
  );
});
