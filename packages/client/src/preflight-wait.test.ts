import { test } from "node:test";
import assert from "node:assert/strict";
import { PreflightError, type LogFields, type Logger } from "@hsdo/core";
import { HaproxyAbsentError, preflightWhenUp } from "./preflight.ts";

function recorder(): Logger & { lines: [string, string, LogFields | undefined][] } {
  const lines: [string, string, LogFields | undefined][] = [];
  const log: Logger & { lines: typeof lines } = {
    lines,
    debug: (m, f) => lines.push(["debug", m, f]),
    info: (m, f) => lines.push(["info", m, f]),
    warn: (m, f) => lines.push(["warn", m, f]),
    error: (m, f) => lines.push(["error", m, f]),
    child: () => log,
    debugEnabled: false,
  };
  return log;
}

test("preflightWhenUp: an absent socket is retried with a progress line every logEveryMs, then the checks' answer is returned", async () => {
  const log = recorder();
  let clock = 0;
  let calls = 0;
  const result = await preflightWhenUp(
    async () => {
      calls += 1;
      clock += 1000;
      if (calls < 12) throw new HaproxyAbsentError("socket /x does not exist");
      return "report";
    },
    { signal: new AbortController().signal, log, socket: "/x", retryMs: 1, logEveryMs: 5000, now: () => clock },
  );
  assert.equal(result, "report");
  assert.equal(calls, 12);
  const waiting = log.lines.filter(([, m]) => m === "waiting for HAProxy's Runtime API");
  assert.deepEqual(waiting.map(([level, , f]) => [level, f?.waitedSeconds]), [["warn", 1], ["warn", 6], ["warn", 11]], "the first failure, then every 5 s");
  assert.deepEqual(log.lines.at(-1)?.slice(0, 2), ["info", "HAProxy's Runtime API answers"]);
});

test("preflightWhenUp: what the operator must fix is thrown at once; an abort while waiting resolves undefined", async () => {
  const log = recorder();
  await assert.rejects(
    preflightWhenUp(async () => Promise.reject(new PreflightError("backend be does not exist")), { signal: new AbortController().signal, log, socket: "/x" }),
    PreflightError,
  );
  const stop = new AbortController();
  const waited = preflightWhenUp(
    async () => {
      setTimeout(() => stop.abort(), 5);
      throw new HaproxyAbsentError("connection refused");
    },
    { signal: stop.signal, log, socket: "/x", retryMs: 60_000 },
  );
  assert.equal(await waited, undefined);
});
