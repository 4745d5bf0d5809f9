import { GetItemCommand, PutItemCommand, UpdateItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { FencedOutError, HsdoError, systemClock, validateSlot, type Clock, type Head, type Slot, type Snapshot } from "@hsdo/core";
import { epochNotAbove, expression } from "./conditions.ts";
import { MalformedItemError } from "./errors.ts";
import { MAX_POOL_SIZE, generationOf, headAttributes, keyOf, parseHead, slotAttributes, toItem, type Attributes, type Item } from "./items.ts";
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
  /** Compute and return the writes of `publish`, send none. */
  dryRun?: boolean;
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
  /** The head as written (or as it would be, in a dry run). */
  head: Head;
  /** The writes in the order they were (or would be) sent: slots, then the head. */
  writes: PlannedWrite[];
  dryRun: boolean;
}

/**
 * The only code that writes head and slot items. Every write is conditional
 * on the stored epoch being absent or not above the term's (the fence), and
 * the term's signal is checked before every send, so a deposed leader stops
 * at once instead of finishing its batch (docs/ARCHITECTURE.md, "Fencing" and
 * "Publishing").
 */
export class FencedWriter {
  readonly pool: string;
  readonly dryRun: boolean;
  private readonly client: DynamoDBClient;
  private readonly table: string;
  private readonly leader: string;
  private readonly clock: Clock;
  private readonly observe: Observe | undefined;
  /** A publish failed after it may have written some slots: the table is no longer what the caller's base says. */
  private unsettled = false;

  constructor(options: FencedWriterOptions) {
    this.client = options.client;
    this.table = options.table;
    this.pool = options.pool;
    this.leader = options.leader;
    this.clock = options.clock ?? systemClock;
    this.observe = options.observe;
    this.dryRun = options.dryRun ?? false;
  }

  /**
   * At takeover, before publishing anything: writes the term's epoch onto the
   * head, then onto every slot item 1..size (creating missing ones as free),
   * so no write of an older leader can land after this returns. Returns the
   * pool as the table holds it, for the new leader to continue from.
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

    const items: Item[] = [];
    for (let k = 1; k <= upTo; k++) {
      if (k <= previousSize) {
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
        items.push(out.Attributes ?? toItem(slotAttributes(this.pool, { slot: k, state: "free", weight: 0, epoch: term.epoch })));
      } else {
        const item = toItem(slotAttributes(this.pool, { slot: k, state: "free", weight: 0, generation: 0, epoch: term.epoch }));
        await this.fenced(term, k, "slot.stamp", () => this.client.send(this.put(item, term.epoch), { abortSignal: term.signal }));
        items.push(item);
      }
    }

    const headGeneration = previous?.generation ?? 0;
    const newest = Math.max(headGeneration, ...items.map(generationOf));
    const resized = previous !== undefined && previous.size !== upTo;
    let head: Head = previous
      ? { ...previous, epoch: term.epoch, leader: this.leader }
      : { generation: 0, epoch: term.epoch, leader: this.leader, updatedAt: now, size };
    if (newest > headGeneration || resized) {
      // A pool never published (generation 0) stays unpublished: readers must not see the stamped free slots as a state.
      head = { generation: resized && newest > 0 ? newest + 1 : newest, epoch: term.epoch, leader: this.leader, updatedAt: this.clock.now(), size: upTo };
      const item = toItem(headAttributes(this.pool, head));
      await this.fenced(term, HEAD_SLOT, "head.write", () => this.client.send(this.put(item, term.epoch), { abortSignal: term.signal }));
    }
    const assembled = assembleSnapshot(this.pool, head, items);
    if (assembled.kind !== "ok") throw new Error(`stampEpoch: pool ${this.pool} still torn after stamping (bug)`);
    return assembled.snapshot;
  }

  /**
   * Publishes one change as a seqlock: every changed slot with generation
   * G+1, then the head with G+1 last. Only `changed` slots are written.
   *
   * When a publish fails part-way (a transient error), some slots of the
   * change may be in the table already, unknown to the caller's base: the
   * writer then refuses to publish again until stampEpoch (idempotent within
   * a term) has read the table's actual state back.
   */
  async publish(term: WriteTerm, change: PublishChange): Promise<PublishResult> {
    if (this.unsettled && !this.dryRun) {
      throw new HsdoError(
        `publish to pool ${this.pool}: a previous publish failed part-way; call stampEpoch again to read the table's actual state first`,
      );
    }
    const { head, writes } = planPublication(this.pool, this.leader, term.epoch, change, this.clock.now());
    if (this.dryRun) return { head, writes, dryRun: true };

    this.unsettled = true;
    for (const write of writes) {
      const item = toItem(write.attributes);
      await this.fenced(term, write.slot, write.slot === HEAD_SLOT ? "head.write" : "slot.write", () =>
        this.client.send(this.put(item, term.epoch), { abortSignal: term.signal }),
      );
    }
    this.unsettled = false;
    return { head, writes, dryRun: false };
  }

  private put(item: Item, epoch: number): PutItemCommand {
    return new PutItemCommand({
      TableName: this.table,
      Item: item,
      ...expression({ condition: [epochNotAbove(epoch)] }),
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      ReturnConsumedCapacity: "TOTAL",
    });
  }

  /** Sends one fenced write: never after the term ended, and a failed fence becomes FencedOutError. */
  private async fenced<T>(term: WriteTerm, slot: number, operation: Operation, request: () => Promise<T>): Promise<T> {
    term.signal.throwIfAborted();
    try {
      return await observed(operation, this.observe, request);
    } catch (err) {
      if (isConditionalCheckFailed(err)) {
        const stored = epochOf(err.Item) ?? (await this.storedEpoch(slot));
        throw new FencedOutError(term.epoch, stored, slot, { cause: err });
      }
      // The SDK's own abort error says less than the reason the term ended.
      if (term.signal.aborted) throw term.signal.reason;
      throw err;
    }
  }

  /**
   * Evidence for FencedOutError when the failed write did not return the old
   * item (dynalite ignores ReturnValuesOnConditionCheckFailure): best effort.
   */
  private async storedEpoch(slot: number): Promise<number | undefined> {
    try {
      const out = await observed("fence.evidence", this.observe, () =>
        this.client.send(
          new GetItemCommand({ TableName: this.table, Key: keyOf(this.pool, slot), ConsistentRead: true, ReturnConsumedCapacity: "TOTAL" }),
        ),
      );
      return epochOf(out.Item);
    } catch {
      return undefined;
    }
  }
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
