import { ConditionalCheckFailedException, type ConsumedCapacity } from "@aws-sdk/client-dynamodb";

/** Every `outcome` label the store reports. */
export const OUTCOMES = ["ok", "conditional_failed", "error"] as const;
export type Outcome = (typeof OUTCOMES)[number];

/**
 * Metrics hook: called once per DynamoDB request with what it was for, how it
 * ended and the capacity units it consumed (when DynamoDB says).
 */
export type Observe = (operation: string, outcome: Outcome, consumedCapacity?: number) => void;

/** Every `operation` label the store reports, so metrics can be declared up front. */
export const OPERATIONS = [
  "table.create",
  "table.describe",
  "lease.read",
  "lease.take",
  "lease.renew",
  "lease.raise",
  "lease.release",
  "head.read",
  "pool.query",
  "head.stamp",
  "slot.stamp",
  "slot.write",
  "head.write",
  "fence.evidence",
] as const;
export type Operation = (typeof OPERATIONS)[number];

export function isConditionalCheckFailed(err: unknown): err is ConditionalCheckFailedException {
  return (
    err instanceof ConditionalCheckFailedException ||
    (typeof err === "object" && err !== null && (err as { name?: unknown }).name === "ConditionalCheckFailedException")
  );
}

function capacityOf(output: unknown): number | undefined {
  const consumed = (output as { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] } | undefined)?.ConsumedCapacity;
  const list = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
  let total: number | undefined;
  for (const c of list) {
    if (typeof c.CapacityUnits === "number") total = (total ?? 0) + c.CapacityUnits;
  }
  return total;
}

/** Runs one request and reports it; the request's own result or error passes through unchanged. */
export async function observed<T>(operation: Operation, observe: Observe | undefined, request: () => Promise<T>): Promise<T> {
  let output: T;
  try {
    output = await request();
  } catch (err) {
    report(observe, operation, isConditionalCheckFailed(err) ? "conditional_failed" : "error");
    throw err;
  }
  report(observe, operation, "ok", capacityOf(output));
  return output;
}

function report(observe: Observe | undefined, operation: string, outcome: Outcome, capacity?: number): void {
  if (!observe) return;
  // A metrics bug must not turn a write that landed into a failure the caller would retry.
  try {
    observe(operation, outcome, capacity);
  } catch {
    /* ignored on purpose */
  }
}
