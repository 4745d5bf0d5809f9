import { test } from "node:test";
import assert from "node:assert/strict";
import type { Snapshot } from "@hsdo/core";
import { formatStatus } from "./status-format.ts";

test("status shows an invalid slot with what identifies it and its problems, and a free slot's last occupant", () => {
  const snapshot: Snapshot = {
    pool: "web",
    head: { generation: 3, epoch: 1, leader: "srv-a", updatedAt: 0, size: 3 },
    slots: [
      { slot: 1, state: "ready", addr: "10.0.0.1", name: "i-1", weight: 5, since: 0 },
      { slot: 2, state: "free", weight: 0 },
      { slot: 3, state: "free", weight: 0, last: "i-3" },
    ],
    invalid: [{ slot: 2, problems: ['weight "heavy" is not a weight (expected 0..256)'], name: "i-2", addr: "10.0.0.2", state: "ready" }],
  };
  const text = formatStatus(snapshot, 0);
  assert.match(text, /^2\s+INVALID\s+10\.0\.0\.2\s+i-2\s+weight "heavy" is not a weight/m);
  assert.match(text, /^3\s+free\s+\(last i-3\)/m);
  assert.match(text, /pool web: 1 ready, 0 drain, 1 free, 1 invalid/);
});
