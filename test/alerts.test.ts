// conf/prometheus/alerts.yaml through Prometheus' own promtool: the rules
// parse and their PromQL is valid (`check rules`), and each fires on the
// series of conf/prometheus/alerts.test.yaml with the labels and rendered
// annotations written there, and not before its `for:` (`test rules`).
// promtool is required: scripts/test.mjs installs Debian's prometheus
// package when it is missing (as root), and this test fails without it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { ROOT } from "@hsdo/testkit";

const RULES = "conf/prometheus/alerts.yaml";
const UNIT_TESTS = "conf/prometheus/alerts.test.yaml";

function promtool(...args: string[]) {
  const r = spawnSync("promtool", args, { cwd: ROOT, encoding: "utf8" });
  assert.equal(r.error, undefined, `promtool runs (${String(r.error)}); install it: apt-get install -y --no-install-recommends prometheus`);
  return r;
}

test("promtool check rules accepts conf/prometheus/alerts.yaml", () => {
  const r = promtool("check", "rules", RULES);
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /SUCCESS: \d+ rules found/);
});

test("promtool test rules: every alert of conf/prometheus/alerts.yaml fires on its series in alerts.test.yaml", () => {
  const r = promtool("test", "rules", UNIT_TESTS);
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /SUCCESS/);

  type Rules = { groups: { rules: { alert: string }[] }[] };
  type Tests = { rule_files: string[]; tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] };
  const alerts = (parseYaml(readFileSync(join(ROOT, RULES), "utf8")) as Rules).groups.flatMap((g) => g.rules.map((x) => x.alert));
  const unit = parseYaml(readFileSync(join(ROOT, UNIT_TESTS), "utf8")) as Tests;
  assert.deepEqual(unit.rule_files, ["alerts.yaml"], "the unit tests load the rules file next to them");
  const cases = unit.tests.flatMap((t) => t.alert_rule_test);
  for (const alert of alerts) {
    assert.ok(cases.some((c) => c.alertname === alert && c.exp_alerts.length > 0), `${alert} has a case where it fires`);
    assert.ok(cases.some((c) => c.alertname === alert && c.exp_alerts.length === 0), `${alert} has a case where it does not`);
  }
  for (const name of ["HsdoPublicationsStalled", "HsdoSafetyValveHolding", "HsdoLifecycleFailures"]) assert.ok(alerts.includes(name), `${name} is a rule`);
});
