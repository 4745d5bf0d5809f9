import { GetItemCommand, PutItemCommand, QueryCommand, UpdateItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { FencedOutError, HsdoError, systemClock, validateSlot, type Clock, type Head, type Slot, type Snapshot } from "@hsdo/core";
import { epochNotAbove, expression, generationBelow, poolFrom, sealable } from "./conditions.ts";
import { GenerationConflictError, MalformedItemError } from "./errors.ts";
import { MAX_POOL_SIZE, generationOf, headAttributes, keyOf, parseHead, parseSlot, slotAttributes, slotNumberOf, toItem, type Attributes, type Item } from "./items.ts";
import { isConditionalCheckFailed, observed, type Observe, type Operation } from "./observe.ts";
import { assembleSnapshot } from "./snapshot.ts";
import { HEAD_SLOT } from "./table.ts";

/** What a writer needs of a leadership term: its epoch, and the signal aborted the moment the term ends. */
export interface WriteTerm {
  readonly epoch: number;
  readonly signal: AbortSignal;
}

export interface FencedWriterOptions {
  client: DynamoDBClient;
  table: string;
  pool: string;
  /** This server's identity, written to the head as `leader`. */
  leader: string;
  clock?: Clock;
  observe?: Observe;
  /** Item writes in flight at once, within one publication or one stamp phase (default DEFAULT_WRITE_CONCURRENCY). */
  concurrency?: number;
}

/** One item write of a publication: slot 0 is the head. */
export interface PlannedWrite {
  slot: number;
  attributes: Attributes;
}

export interface PublishChange {
  /** The head the change was computed from (from stampEpoch, or the previous publish). */
  base: Head;
  /** Only the slots that differ from `base`'s state; nothing else is written. */
  changed: readonly Slot[];
  /** New slot count, when it changes (default: `base.size`). */
  size?: number;
}

export interface PublishResult {
  /** The head as written. */
  head: Head;
  /** The writes in the order they were sent: slots, then the head. */
  writes: PlannedWrite[];
}

/** Writes of one publication (or of one stamp phase) in flight at once: enough to hide DynamoDB's latency, far below any table's throughput. */
export const DEFAULT_WRITE_CONCURRENCY = 32;

/**
 * The only code that writes head and slot items. Every write is conditional
 * on the stored epoch being absent or not above the term's (the fence), every
 * item replacement also on the stored generation being below the one written
 * within the same epoch (the same-epoch fence), and the term's signal is
 * checked before every send, so a deposed leader stops at once instead of
 * finishing its batch (docs/ARCHITECTURE.md, "Fencing" and "Publishing").
 */
export class FencedWriter {
  readonly pool: string;
  private readonly client: DynamoDBClient;
  private readonly table: string;
  private readonly leader: string;
  private readonly clock: Clock;
  private readonly observe: Observe | undefined;
  private readonly concurrency: number;
  /** A publish failed after it may have written some slots: the table is no longer what the caller's base says. */
  private unsettled = false;
  /**
   * The last publication that failed part-way: some of its writes may still
   * be in flight (an SDK attempt the client gave up on can still land). The
   * next stamp seals its slots so none of them can land afterwards.
   */
  private abandoned: { epoch: number; generation: number; slots: number[] } | undefined;

  constructor(options: FencedWriterOptions) {
    this.client = options.client;
    this.table = options.table;
    this.pool = options.pool;
    this.leader = options.leader;
    this.clock = options.clock ?? systemClock;
    this.observe = options.observe;
    this.concurrency = options.concurrency ?? DEFAULT_WRITE_CONCURRENCY;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new HsdoError(`write concurrency ${this.concurrency} is not an integer >= 1`);
  }

  /**
   * At takeover, before publishing anything: writes the term's epoch onto the
   * head, then onto every slot item that exists (one Query finds them; the
   * stamps go out concurrently), so no write of an older leader can land on
   * them after this returns. Returns the pool as the table holds it, for the
   * new leader to continue from.
   *
   * Missing slot items are free. They are created (free, no generation) only
   * when a head existed before: an older leader may then still have a write
   * in flight to a key that does not exist yet, and a missing key carries no
   * fence. With no head at all, no leader ever finished a stamp, so nobody
   * can have a slot write in flight: an empty pool costs one head write and
   * one Query, whatever its size.
   *
   * Slots beyond the size the head had published were not part of any
   * published state, so they are reset to free. If an older leader died
   * half-way through a publication (slots newer than the head), or the size
   * changes, the head is rewritten with a new generation, so readers see a
   * consistent pool again. A head stamped on an empty pool has generation 0:
   * readers take it as "nothing published yet".
   */
  async stampEpoch(term: WriteTerm, size: number): Promise<Snapshot> {
    checkSize(size);
    const snapshot = await this.stamp(term, size);
    this.unsettled = false;
    this.abandoned = undefined;
    return snapshot;
  }

  private async stamp(term: WriteTerm, size: number): Promise<Snapshot> {
    const now = this.clock.now();
    const old = await this.fenced(term, HEAD_SLOT, "head.stamp", () =>
      this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: keyOf(this.pool, HEAD_SLOT),
          ...expression({
            set: { epoch: term.epoch, leader: this.leader },
            setIfAbsent: { generation: 0, size, updatedAt: now },
            condition: [epochNotAbove(term.epoch)],
          }),
          ReturnValues: "ALL_OLD",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          ReturnConsumedCapacity: "TOTAL",
        }),
        { abortSignal: term.signal },
      ),
    );
    let previous: Head | undefined;
    if (old.Attributes) {
      const parsed = parseHead(old.Attributes);
      if (!parsed.ok) throw new MalformedItemError(this.table, this.pool, HEAD_SLOT, parsed.problems);
      previous = parsed.value;
    }
    const previousSize = previous?.size ?? 0;
    // Never shrink here: the slots beyond a smaller size are stamped and
    // returned too, so the caller can refuse a size that would cut off an
    // occupied slot before anything but epochs was written.
    const upTo = Math.max(size, previousSize);

    if (this.abandoned) await this.seal(term, this.abandoned);

    const stored = await this.slotItems(term, upTo);
    const bySlot = new Map<number, Item>();
    const stamps: number[] = [];
    const creates: number[] = [];
    const leftovers: number[] = [];
    for (let k = 1; k <= upTo; k++) {
      const item = stored.get(k);
      if (item === undefined) {
        if (previous !== undefined) creates.push(k);
      } else if (k <= previousSize || isPlainFree(item, k)) {
        stamps.push(k);
      } else {
        // A leftover of a larger pool long ago: stamped first (so nothing older lands on it), reset to free below.
        stamps.push(k);
        leftovers.push(k);
      }
    }
    await this.each(term, [...stamps, ...creates], async (k) => {
      if (stored.has(k)) {
        const out = await this.fenced(term, k, "slot.stamp", () =>
          this.client.send(
            new UpdateItemCommand({
              TableName: this.table,
              Key: keyOf(this.pool, k),
              ...expression({
                set: { epoch: term.epoch },
                setIfAbsent: { state: "free", weight: 0 },
                condition: [epochNotAbove(term.epoch)],
              }),
              ReturnValues: "ALL_NEW",
              ReturnValuesOnConditionCheckFailure: "ALL_OLD",
              ReturnConsumedCapacity: "TOTAL",
            }),
            { abortSignal: term.signal },
          ),
        );
        bySlot.set(k, out.Attributes ?? toItem(slotAttributes(this.pool, { slot: k, state: "free", weight: 0, epoch: term.epoch })));
      } else {
        // Free, with no generation (it reads as 0): the very slot a reader sees for a missing item.
        const item = toItem(slotAttributes(this.pool, { slot: k, state: "free", weight: 0, epoch: term.epoch }));
        await this.write(term, k, "slot.stamp", item);
        bySlot.set(k, item);
      }
    });

    const headGeneration = previous?.generation ?? 0;
    const newest = Math.max(headGeneration, ...[...bySlot.values()].map(generationOf));
    let generation = headGeneration;
    if (leftovers.length > 0) {
      // Freeing them is a publication of its own: a generation above every item seen, head last.
      generation = newest + 1;
      await this.each(term, leftovers, async (k) => {
        const item = toItem(slotAttributes(this.pool, { slot: k, state: "free", weight: 0, generation, epoch: term.epoch }));
        await this.write(term, k, "slot.write", item);
        bySlot.set(k, item);
      });
    }
    const resized = previous !== undefined && previous.size !== upTo;
    if (leftovers.length === 0 && (newest > headGeneration || resized)) {
      // A pool never published (generation 0) stays unpublished: readers must not see the stamped free slots as a state.
      generation = resized && newest > 0 ? newest + 1 : newest;
    }
    let head: Head = previous
      ? { ...previous, epoch: term.epoch, leader: this.leader }
      : { generation: 0, epoch: term.epoch, leader: this.leader, updatedAt: now, size };
    if (generation !== headGeneration || resized) {
      head = { generation, epoch: term.epoch, leader: this.leader, updatedAt: this.clock.now(), size: upTo };
      await this.write(term, HEAD_SLOT, "head.write", toItem(headAttributes(this.pool, head)));
    }
    const assembled = assembleSnapshot(this.pool, head, [...bySlot.values()]);
    if (assembled.kind !== "ok") throw new Error(`stampEpoch: pool ${this.pool} still torn after stamping (bug)`);
    return assembled.snapshot;
  }

  /**
   * Seals the slots of a publication that failed part-way: each gets the
   * failed publication's generation (content unchanged; created free when
   * missing), so a write of it still in flight is refused when it arrives.
   * A slot already at that generation or newer needs nothing.
   */
  private async seal(term: WriteTerm, abandoned: { epoch: number; generation: number; slots: number[] }): Promise<void> {
    await this.each(term, abandoned.slots, async (k) => {
      try {
        await this.fenced(term, k, "slot.stamp", () =>
          this.client.send(
            new UpdateItemCommand({
              TableName: this.table,
              Key: keyOf(this.pool, k),
              ...expression({
                set: { epoch: term.epoch, generation: abandoned.generation },
                setIfAbsent: { state: "free", weight: 0 },
                condition: [sealable(abandoned.epoch, abandoned.generation)],
              }),
              ReturnConsumedCapacity: "TOTAL",
            }),
            { abortSignal: term.signal },
          ),
        );
      } catch (err) {
        // Refused: the item is at that generation or newer, or of a newer epoch (the Query and stamp that follow tell).
        if (!(err instanceof FencedOutError)) throw err;
      }
    });
  }

  /** Slot items 1..upTo as stored, by one consistent Query (paginated). */
  private async slotItems(term: WriteTerm, upTo: number): Promise<Map<number, Item>> {
    const out = new Map<number, Item>();
    let start: Item | undefined;
    do {
      term.signal.throwIfAborted();
      const page = await observed("pool.query", this.observe, () =>
        this.client.send(
          new QueryCommand({
            TableName: this.table,
            ...expression({ key: poolFrom(this.pool, 1) }),
            ConsistentRead: true,
            ExclusiveStartKey: start,
            ReturnConsumedCapacity: "TOTAL",
          }),
          { abortSignal: term.signal },
        ),
      );
      for (const item of page.Items ?? []) {
        const k = slotNumberOf(item);
        if (k !== undefined && Number.isInteger(k) && k >= 1 && k <= upTo) out.set(k, item);
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }

  /**
   * Publishes one change as a seqlock: every changed slot with generation
   * G+1 (concurrently, at most `concurrency` in flight), then the head with
   * G+1 last, once every slot write succeeded. Only `changed` slots are
   * written.
   *
   * When a publish fails part-way (a transient error), some slots of the
   * change may be in the table already, unknown to the caller's base: the
   * writer then refuses to publish again until stampEpoch (idempotent within
   * a term) has read the table's actual state back.
   */
  async publish(term: WriteTerm, change: PublishChange): Promise<PublishResult> {
    if (this.unsettled) {
      throw new HsdoError(
        `publish to pool ${this.pool}: a previous publish failed part-way; call stampEpoch again to read the table's actual state first`,
      );
    }
    const { head, writes } = planPublication(this.pool, this.leader, term.epoch, change, this.clock.now());
    this.unsettled = true;
    const slots = writes.filter((w) => w.slot !== HEAD_SLOT);
    try {
      await this.each(term, slots, (w) => this.write(term, w.slot, "slot.write", toItem(w.attributes)));
      const last = writes.at(-1)!;
      await this.write(term, HEAD_SLOT, "head.write", toItem(last.attributes));
    } catch (err) {
      this.abandoned = { epoch: term.epoch, generation: head.generation, slots: slots.map((w) => w.slot) };
      throw err;
    }
    this.unsettled = false;
    return { head, writes };
  }

  /**
   * Replaces one item under both fences. Refused but the item as stored is
   * exactly `item`: an earlier attempt of this very write landed (its answer
   * was lost, the SDK sent it again), so it counts as written.
   */
  private async write(term: WriteTerm, slot: number, operation: Operation, item: Item): Promise<void> {
    const epoch = term.epoch;
    const generation = generationOf(item);
    await this.fenced(
      term,
      slot,
      operation,
      () =>
        this.client.send(
          new PutItemCommand({
            TableName: this.table,
            Item: item,
            ...expression({ condition: [epochNotAbove(epoch), generationBelow(generation, epoch)] }),
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
            ReturnConsumedCapacity: "TOTAL",
          }),
          { abortSignal: term.signal },
        ),
      item,
    );
  }

  /** Runs `fn` on every item, at most `concurrency` at once; after a failure no new one starts, and the first failure (in list order) is thrown once the others settled. */
  private async each<T>(term: WriteTerm, items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
    await boundedEach(items, this.concurrency, fn);
    term.signal.throwIfAborted();
  }

  /**
   * Sends one fenced write: never after the term ended, and a failed fence
   * becomes FencedOutError (a newer epoch) or GenerationConflictError (same
   * epoch, generation not below ours, other content). With `expected`, a
   * refused write whose item is stored exactly as `expected` is a success.
   */
  private async fenced<T>(term: WriteTerm, slot: number, operation: Operation, request: () => Promise<T>, expected?: Item): Promise<T> {
    term.signal.throwIfAborted();
    try {
      return await observed(operation, this.observe, request);
    } catch (err) {
      if (isConditionalCheckFailed(err)) {
        const stored = err.Item ?? (await this.storedItem(slot));
        // Only write() passes `expected`, and it uses no output of the request.
        if (expected !== undefined && stored !== undefined && sameItem(stored, expected)) return undefined as T;
        const storedEpoch = epochOf(stored);
        if (expected !== undefined && storedEpoch !== undefined && storedEpoch <= term.epoch) {
          throw new GenerationConflictError(this.pool, slot, generationOf(expected), stored?.generation ? generationOf(stored) : undefined, { cause: err });
        }
        throw new FencedOutError(term.epoch, storedEpoch, slot, { cause: err });
      }
      // The SDK's own abort error says less than the reason the term ended.
      if (term.signal.aborted) throw term.signal.reason;
      throw err;
    }
  }

  /**
   * The item as stored, when the failed write did not return the old item
   * (dynalite ignores ReturnValuesOnConditionCheckFailure): best effort.
   */
  private async storedItem(slot: number): Promise<Item | undefined> {
    try {
      const out = await observed("fence.evidence", this.observe, () =>
        this.client.send(
          new GetItemCommand({ TableName: this.table, Key: keyOf(this.pool, slot), ConsistentRead: true, ReturnConsumedCapacity: "TOTAL" }),
        ),
      );
      return out.Item;
    } catch {
      return undefined;
    }
  }
}

/** Runs `fn` on every item, at most `limit` at once; after a failure none starts, and the first failure in list order is thrown once all started ones settled. */
export async function boundedEach<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const failures: { index: number; error: unknown }[] = [];
  const worker = async (): Promise<void> => {
    while (failures.length === 0 && next < items.length) {
      const index = next++;
      try {
        await fn(items[index]!);
      } catch (error) {
        failures.push({ index, error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failures.length) throw failures.sort((a, b) => a.index - b.index)[0]!.error;
}

/** A slot item that reads as a free slot already: nothing to reset. */
function isPlainFree(item: Item, k: number): boolean {
  const check = parseSlot(item, k);
  return check.ok && check.slot.state === "free" && check.slot.addr === undefined;
}

/** The same attributes with the same values (numbers compared as numbers: DynamoDB may normalise their text). */
function sameItem(a: Item, b: Item): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) {
    const x = a[k];
    const y = b[k];
    if (x === undefined || y === undefined) return false;
    if (x.N !== undefined || y.N !== undefined) {
      if (x.N === undefined || y.N === undefined || Number(x.N) !== Number(y.N)) return false;
    } else if (JSON.stringify(x) !== JSON.stringify(y)) {
      return false;
    }
  }
  return true;
}

function epochOf(item: Item | undefined): number | undefined {
  const n = item?.epoch?.N === undefined ? undefined : Number(item.epoch.N);
  return n !== undefined && Number.isFinite(n) ? n : undefined;
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 1 || size > MAX_POOL_SIZE) {
    throw new HsdoError(`pool size ${size} is not a slot count (expected 1..${MAX_POOL_SIZE})`);
  }
}

/**
 * The writes of one publication, in order (changed slots, then the head with
 * generation G+1), each checked as the readers will check it. Pure: the
 * writer sends them, and a dry run shows them.
 */
export function planPublication(pool: string, leader: string, epoch: number, change: PublishChange, now: number): { head: Head; writes: PlannedWrite[] } {
  const size = change.size ?? change.base.size;
  checkSize(size);
  const generation = change.base.generation + 1;
  const seen = new Set<number>();
  const writes: PlannedWrite[] = [];
  for (const slot of [...change.changed].sort((a, b) => a.slot - b.slot)) {
    if (!Number.isInteger(slot.slot) || slot.slot < 1 || slot.slot > size) {
      throw new HsdoError(`publish: slot ${slot.slot} is outside the pool (1..${size})`);
    }
    if (seen.has(slot.slot)) throw new HsdoError(`publish: slot ${slot.slot} appears twice in one change`);
    seen.add(slot.slot);
    const attributes = slotAttributes(pool, { ...slot, generation, epoch });
    const check = validateSlot(attributes, slot.slot);
    if (!check.ok) throw new HsdoError(`publish: slot ${slot.slot} would be written invalid: ${check.problems.join("; ")}`);
    writes.push({ slot: slot.slot, attributes });
  }
  const head: Head = { generation, epoch, leader, updatedAt: now, size };
  writes.push({ slot: HEAD_SLOT, attributes: headAttributes(pool, head) });
  return { head, writes };
}
