import { test } from "node:test";
import assert from "node:assert/strict";
import { classifyInstance, waitsForHook } from "./aws-classify.ts";

test("ASG lifecycle state and health classify as docs/ARCHITECTURE.md says", () => {
  const table: [string, string, boolean, string][] = [
    ["InService", "Healthy", true, "ready"],
    ["InService", "Healthy", false, "pending"],
    ["InService", "Unhealthy", true, "leaving"],
    ["Pending", "Healthy", false, "pending"],
    ["Pending:Wait", "Healthy", true, "pending"],
    ["Pending:Proceed", "Healthy", true, "pending"],
    ["Pending", "Unhealthy", true, "leaving"],
    ["Terminating", "Healthy", true, "leaving"],
    ["Terminating:Wait", "Healthy", true, "leaving"],
    ["Terminating:Proceed", "Healthy", true, "leaving"],
    ["Terminated", "Healthy", true, "leaving"],
    ["Detaching", "Healthy", true, "leaving"],
    ["Detached", "Healthy", true, "leaving"],
    ["EnteringStandby", "Healthy", true, "leaving"],
    ["Standby", "Healthy", true, "leaving"],
    ["ReplacingRootVolume:Wait", "Healthy", true, "leaving"],
    ["Quarantined", "Healthy", true, "pending"],
    ["Warmed:Running", "Healthy", true, "pending"],
    ["SomethingNew", "Healthy", true, "pending"],
  ];
  for (const [state, health, hasIp, expected] of table) {
    assert.equal(classifyInstance(state, health, hasIp), expected, `${state}/${health}/ip=${hasIp}`);
  }
});

test("only Terminating:Wait waits for the lifecycle hook", () => {
  assert.equal(waitsForHook("Terminating:Wait"), true);
  for (const state of ["Terminating", "Terminating:Proceed", "Pending:Wait", "InService"]) assert.equal(waitsForHook(state), false, state);
});
