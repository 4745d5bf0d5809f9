import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";

/**
 * Every guard the store puts on a write is one of these named clauses, so the
 * protocol reads as words (`epochNotAbove(3)`, `ownerIs("a")`). Attribute
 * names always go through `#name` placeholders: pool, state, name, size, group
 * and owner are DynamoDB reserved words.
 */
export type Scalar = string | number | boolean;

export interface Clause {
  readonly text: string;
  readonly names: Readonly<Record<string, string>>;
  readonly values: Readonly<Record<string, Scalar>>;
}

/** The item's stored epoch is absent or not greater than ours: the fence on every head and slot write. */
export function epochNotAbove(epoch: number): Clause {
  return {
    text: "(attribute_not_exists(#epoch) OR #epoch <= :maxEpoch)",
    names: { "#epoch": "epoch" },
    values: { ":maxEpoch": epoch },
  };
}

/**
 * The same-epoch fence, always next to epochNotAbove(epoch): the stored item
 * is not as new as the one being written. Within one epoch a write must carry
 * a strictly greater generation than the stored one, so a write that lands
 * late (an SDK retry, a request held in the network) can never put an older
 * state back over a newer one; an item of an older epoch (not stamped by this
 * term: a leftover, or a deposed leader's write onto a key that was missing)
 * is overwritten whatever its generation. Strictly greater, not equal: the
 * same generation with other content must not land either; the writer counts
 * a refused write as success only when a read-back shows the very item it
 * wrote (its own earlier attempt landed).
 */
export function generationBelow(generation: number, epoch: number): Clause {
  return {
    text: "(attribute_not_exists(#generation) OR #generation < :generation OR #epoch < :maxEpoch)",
    names: { "#generation": "generation", "#epoch": "epoch" },
    values: { ":generation": generation, ":maxEpoch": epoch },
  };
}

/**
 * Sealing a slot a failed publication of `epoch` may still write to (a
 * request in flight): the key does not exist yet, or it holds an item of that
 * epoch older than `generation`. After the seal, the item carries
 * `generation`, and every late write of that publication is refused by
 * generationBelow.
 */
export function sealable(epoch: number, generation: number): Clause {
  return {
    text: "(attribute_not_exists(#pool) OR (#epoch = :sealEpoch AND #generation < :generation))",
    names: { "#pool": "pool", "#epoch": "epoch", "#generation": "generation" },
    values: { ":sealEpoch": epoch, ":generation": generation },
  };
}

export function epochIs(epoch: number): Clause {
  return { text: "#epoch = :epoch", names: { "#epoch": "epoch" }, values: { ":epoch": epoch } };
}

export function ownerIs(owner: string): Clause {
  return { text: "#owner = :owner", names: { "#owner": "owner" }, values: { ":owner": owner } };
}

export function rvnIs(rvn: string): Clause {
  return { text: "#rvn = :rvn", names: { "#rvn": "rvn" }, values: { ":rvn": rvn } };
}

/** No item under this key yet (the key attribute is present on every item). */
export function absent(): Clause {
  return { text: "attribute_not_exists(#pool)", names: { "#pool": "pool" }, values: {} };
}

/** Parts of a request's expression, ready to spread into a PutItem/UpdateItem/Query input. */
export interface Expression {
  ConditionExpression?: string;
  UpdateExpression?: string;
  KeyConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, AttributeValue>;
}

export interface ExpressionParts {
  /** Joined with AND. */
  condition?: Clause[];
  /** Joined with AND, for a Query. */
  key?: Clause[];
  /** `SET #k = :set_k` for each entry. */
  set?: Record<string, Scalar>;
  /** `SET #k = if_not_exists(#k, :init_k)`: a default that never overwrites. */
  setIfAbsent?: Record<string, Scalar>;
}

const ATTRIBUTE = /^[A-Za-z][A-Za-z0-9]*$/;

/** Merges clauses and updates into one expression object; a placeholder bound to two values is a bug and throws. */
export function expression(parts: ExpressionParts): Expression {
  const names: Record<string, string> = {};
  const values: Record<string, Scalar> = {};
  const bind = (clause: Clause): string => {
    for (const [k, v] of Object.entries(clause.names)) {
      if (k in names && names[k] !== v) throw new Error(`expression: placeholder ${k} names both ${names[k]} and ${v}`);
      names[k] = v;
    }
    for (const [k, v] of Object.entries(clause.values)) {
      if (k in values && values[k] !== v) throw new Error(`expression: placeholder ${k} bound to both ${values[k]} and ${v}`);
      values[k] = v;
    }
    return clause.text;
  };
  const out: Expression = {};
  if (parts.condition?.length) out.ConditionExpression = parts.condition.map(bind).join(" AND ");
  if (parts.key?.length) out.KeyConditionExpression = parts.key.map(bind).join(" AND ");
  const assignments: string[] = [];
  for (const [attr, value] of Object.entries(parts.set ?? {})) {
    assignments.push(bind(assign(attr, `:set_${attr}`, value, (n, v) => `${n} = ${v}`)));
  }
  for (const [attr, value] of Object.entries(parts.setIfAbsent ?? {})) {
    assignments.push(bind(assign(attr, `:init_${attr}`, value, (n, v) => `${n} = if_not_exists(${n}, ${v})`)));
  }
  if (assignments.length) out.UpdateExpression = `SET ${assignments.join(", ")}`;
  if (Object.keys(names).length) out.ExpressionAttributeNames = names;
  if (Object.keys(values).length) out.ExpressionAttributeValues = marshall(values);
  return out;
}

function assign(attr: string, placeholder: string, value: Scalar, render: (name: string, value: string) => string): Clause {
  if (!ATTRIBUTE.test(attr)) throw new Error(`expression: ${JSON.stringify(attr)} is not a plain attribute name`);
  return { text: render(`#${attr}`, placeholder), names: { [`#${attr}`]: attr }, values: { [placeholder]: value } };
}

/** Key condition of a whole pool from `fromSlot` on (slot -1 is the lease, 0 the head, 1.. the slots). */
export function poolFrom(pool: string, fromSlot: number): Clause[] {
  return [
    { text: "#pool = :pool", names: { "#pool": "pool" }, values: { ":pool": pool } },
    { text: "#slot >= :fromSlot", names: { "#slot": "slot" }, values: { ":fromSlot": fromSlot } },
  ];
}
