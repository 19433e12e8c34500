// zmq_to_amqp's data plane: every converted message waits here until the broker
// confirms it. Bounded by count and bytes; O(1) per message.
import type { AmqpProperties } from "../actors/transport.ts";
import { ownBytes } from "./byte-slab.ts";

export interface Outgoing {
  readonly seq: number;
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Uint8Array;
  readonly properties: AmqpProperties;
  readonly receivedAt: number;
  /** Published at least once before (a reconnect or nack): a duplicate is possible. */
  republished: boolean;
}

/**
 * What a buffered message costs beyond its body, counted so that `max_bytes`
 * bounds the memory really held, not only the bodies. `npm run bench` (g): a
 * 100,000-message burst while the broker blocks costs 3.2-3.4 KB of RSS per
 * buffered message of an 854-byte body. About 1.3 KB of that is the message
 * (entry, properties, ids, body view and bytes); the rest is memory that
 * libzmq's receive queue took during the burst, which the C allocator keeps.
 */
export const MESSAGE_OVERHEAD_BYTES = 2560;

const cost = (message: { body: Uint8Array }) => message.body.byteLength + MESSAGE_OVERHEAD_BYTES;

export interface BufferLimits {
  maxMessages: number;
  maxBytes: number;
}

export class PublishBuffer {
  private waiting: (Outgoing | undefined)[] = [];
  private head = 0;
  private readonly inflight = new Set<Outgoing>();
  private nextSeq = 1;
  private bytesHeld = 0;
  /** Called when a message becomes available to publish. */
  onData: () => void = () => {};

  constructor(readonly limits: BufferLimits) {}

  get size() {
    return this.waiting.length - this.head + this.inflight.size;
  }
  get bytes() {
    return this.bytesHeld;
  }
  get waitingCount() {
    return this.waiting.length - this.head;
  }
  get inflightCount() {
    return this.inflight.size;
  }
  get full() {
    return this.size >= this.limits.maxMessages || this.bytesHeld >= this.limits.maxBytes;
  }

  /** False when the buffer is full: the caller applies the overflow policy. */
  push(message: Omit<Outgoing, "seq" | "republished">, republished = false): boolean {
    if (this.full) return false;
    // Fields spelled out: V8 gives every `{ ...message, seq }` clone a hidden class
    // of its own (~300 bytes and a slow path per message, measured by scripts/bench.ts).
    const { exchange, routingKey, body, properties, receivedAt } = message;
    this.waiting.push({ exchange, routingKey, body, properties, receivedAt, seq: this.nextSeq++, republished });
    this.bytesHeld += cost(message);
    this.onData();
    return true;
  }

  /** The oldest waiting message, now counted as in flight. */
  take(): Outgoing | undefined {
    if (this.head >= this.waiting.length) return undefined;
    const message = this.waiting[this.head]!;
    this.waiting[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    this.inflight.add(message);
    return message;
  }

  confirm(message: Outgoing) {
    if (this.inflight.delete(message)) this.bytesHeld -= cost(message);
  }

  /** Puts in-flight messages back at the front, oldest first; returns how many. */
  requeue(messages: Iterable<Outgoing> = this.inflight): number {
    const back = [...messages].filter((m) => this.inflight.delete(m)).sort((a, b) => a.seq - b.seq);
    for (const m of back) m.republished = true;
    if (back.length === 0) return 0;
    this.waiting = [...back, ...this.waiting.slice(this.head)];
    this.head = 0;
    this.onData();
    return back.length;
  }

  /**
   * Removes the waiting messages that `match` selects (a refused topic); O(n), for
   * rare events only. They may be held a long time: each gets its own body bytes.
   */
  extract(match: (message: Outgoing) => boolean): Outgoing[] {
    const taken: Outgoing[] = [];
    const kept: (Outgoing | undefined)[] = [];
    for (let i = this.head; i < this.waiting.length; i++) {
      const m = this.waiting[i]!;
      if (match(m)) {
        taken.push({ ...m, body: ownBytes(m.body) });
        this.bytesHeld -= cost(m);
      } else kept.push(m);
    }
    this.waiting = kept;
    this.head = 0;
    return taken;
  }

  /** Empties the buffer, in flight included, oldest first (to move it to the spool). */
  drain(): Outgoing[] {
    const all = [...this.unconfirmed()];
    this.waiting = [];
    this.head = 0;
    this.inflight.clear();
    this.bytesHeld = 0;
    return all;
  }

  /** Everything not yet confirmed, oldest first (for the spool on shutdown). */
  *unconfirmed(): Iterable<Outgoing> {
    yield* [...this.inflight].sort((a, b) => a.seq - b.seq);
    for (let i = this.head; i < this.waiting.length; i++) yield this.waiting[i]!;
  }
}
