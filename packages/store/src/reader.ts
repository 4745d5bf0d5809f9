import { GetItemCommand, QueryCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { sleep, type Head, type Snapshot } from "@hsdo/core";
import { expression, poolFrom } from "./conditions.ts";
import { MalformedItemError, TornReadError } from "./errors.ts";
import { keyOf, parseHead, slotNumberOf, type Item } from "./items.ts";
import { observed, type Observe } from "./observe.ts";
import { assembleSnapshot } from "./snapshot.ts";
import { HEAD_SLOT } from "./table.ts";

export interface SlotReaderOptions {
  client: DynamoDBClient;
  table: string;
  pool: string;
  observe?: Observe;
  /** Reads of a torn pool before giving up with TornReadError (default 5). */
  maxAttempts?: number;
  /** Delay before the second read of a torn pool, growing linearly after (default 20 ms). */
  retryDelayMs?: number;
  /** Items per Query page (default: DynamoDB's own 1 MB pages). */
  pageSize?: number;
}

export type PollResult =
  | { changed: false; head: Head | undefined }
  | { changed: true; snapshot: Snapshot };

/**
 * Reads one pool as the clients do (docs/ARCHITECTURE.md, "Reading"): a cheap, eventually
 * consistent read of the head every tick, and a consistent Query of the
 * whole pool only when the head's generation moved. Never writes.
 */
export class SlotReader {
  readonly pool: string;
  private readonly client: DynamoDBClient;
  private readonly table: string;
  private readonly observe: Observe | undefined;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;
  private readonly pageSize: number | undefined;

  constructor(options: SlotReaderOptions) {
    this.client = options.client;
    this.table = options.table;
    this.pool = options.pool;
    this.observe = options.observe;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    this.retryDelayMs = options.retryDelayMs ?? 20;
    this.pageSize = options.pageSize;
  }

  /** The head item, eventually consistent (half a read unit); undefined when no server has stamped the pool. */
  async head(signal?: AbortSignal): Promise<Head | undefined> {
    const out = await observed("head.read", this.observe, () =>
      this.client.send(
        new GetItemCommand({
          TableName: this.table,
          Key: keyOf(this.pool, HEAD_SLOT),
          ConsistentRead: false,
          ReturnConsumedCapacity: "TOTAL",
        }),
        { abortSignal: signal },
      ),
    );
    return out.Item ? this.readHead(out.Item) : undefined;
  }

  /**
   * The whole pool, consistent and never torn; undefined when nothing was
   * published yet (no head, or a head of generation 0 that a new leader
   * stamped before its first publication). Retries a torn read a few times,
   * then throws TornReadError.
   */
  async snapshot(signal?: AbortSignal): Promise<Snapshot | undefined> {
    for (let attempt = 1; ; attempt++) {
      const items = await this.query(signal);
      const headItem = items.find((item) => slotNumberOf(item) === HEAD_SLOT);
      if (!headItem) return undefined;
      const head = this.readHead(headItem);
      if (head.generation === 0) return undefined;
      const result = assembleSnapshot(this.pool, head, items);
      if (result.kind === "ok") return result.snapshot;
      if (attempt >= this.maxAttempts) {
        throw new TornReadError(this.pool, attempt, result.headGeneration, result.slot, result.slotGeneration);
      }
      await sleep(this.retryDelayMs * attempt, signal);
      signal?.throwIfAborted();
    }
  }

  /**
   * One client tick: reads the head, and the pool only when the generation
   * differs from `lastGeneration`. `signal` bounds the whole poll (the
   * client's per-tick deadline).
   */
  async poll(lastGeneration?: number, signal?: AbortSignal): Promise<PollResult> {
    const head = await this.head(signal);
    if (!head || head.generation === 0 || head.generation === lastGeneration) return { changed: false, head };
    const snapshot = await this.snapshot(signal);
    if (!snapshot) return { changed: false, head: undefined };
    if (snapshot.head.generation === lastGeneration) return { changed: false, head: snapshot.head };
    return { changed: true, snapshot };
  }

  private readHead(item: Item): Head {
    const parsed = parseHead(item);
    if (!parsed.ok) throw new MalformedItemError(this.table, this.pool, HEAD_SLOT, parsed.problems);
    return parsed.value;
  }

  /** Head and slot items in slot order, every page; the head comes first, which is what makes the seqlock check sound. */
  private async query(signal?: AbortSignal): Promise<Item[]> {
    const items: Item[] = [];
    let start: Item | undefined;
    do {
      const page = await observed("pool.query", this.observe, () =>
        this.client.send(
          new QueryCommand({
            TableName: this.table,
            ...expression({ key: poolFrom(this.pool, HEAD_SLOT) }),
            ConsistentRead: true,
            ExclusiveStartKey: start,
            Limit: this.pageSize,
            ReturnConsumedCapacity: "TOTAL",
          }),
          { abortSignal: signal },
        ),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }
}
