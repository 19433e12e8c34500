// An in-memory ZeroMQ PUB/SUB bus: SUB prefix filtering on the first frame, messages
// sent while no subscriber is connected are lost (that is ZeroMQ), delivery is
// asynchronous (microtasks) but in a fixed order. Fault injection: links drop and
// come back, raw (malformed) multipart messages can be injected.
import type {
  ZmqFrames,
  ZmqPublisher,
  ZmqSocketEvent,
  ZmqSubscriber,
  ZmqTransport,
} from "../transport.ts";

const encoder = new TextEncoder();

function toBytes(frame: string | Uint8Array): Uint8Array {
  return typeof frame === "string" ? encoder.encode(frame) : frame.slice();
}

function startsWith(frame: Uint8Array | undefined, prefix: Uint8Array): boolean {
  if (prefix.length === 0) return true;
  if (frame === undefined || frame.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (frame[i] !== prefix[i]) return false;
  return true;
}

const WILDCARD_HOSTS = new Set(["*", "0.0.0.0", "::", "[::]"]);
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

interface TcpEndpoint {
  host: string;
  port: string;
}

function parseTcp(endpoint: string): TcpEndpoint | undefined {
  const m = /^tcp:\/\/(\[[^\]]*\]|[^:]*):(\d+|\*)$/.exec(endpoint);
  return m === null ? undefined : { host: m[1], port: m[2] };
}

/**
 * Whether a socket at `a` and one at `b` reach each other: the same string, or TCP
 * on the same port where one side binds a wildcard (`tcp://*:9940` serves
 * `tcp://anyhost:9940`) or both name the loopback.
 */
export function endpointsMatch(a: string, b: string): boolean {
  if (a === b) return true;
  const x = parseTcp(a);
  const y = parseTcp(b);
  if (x === undefined || y === undefined || x.port !== y.port) return false;
  if (WILDCARD_HOSTS.has(x.host) || WILDCARD_HOSTS.has(y.host)) return true;
  return LOOPBACK_HOSTS.has(x.host) && LOOPBACK_HOSTS.has(y.host);
}

function validateEndpoint(endpoint: string): Error | undefined {
  if (!/^(tcp|ipc|inproc|pgm|epgm):\/\/.+/.test(endpoint)) {
    return Object.assign(
      new Error(`Invalid argument: "${endpoint}" is not a ZeroMQ endpoint; expected tcp://host:port, ipc://path or inproc://name`),
      { code: "EINVAL" },
    );
  }
  return undefined;
}

type InboxItem = { kind: "message"; frames: ZmqFrames } | { kind: "event"; event: ZmqSocketEvent };

export interface SimBusOptions {
  /**
   * Messages a subscriber may hold before its onMessage handler takes them (ZeroMQ's
   * RCVHWM); beyond it, messages are dropped and counted. Default: unbounded.
   */
  subscriberHighWater?: number;
}

class SimSubscriber implements ZmqSubscriber {
  readonly topics: readonly Uint8Array[];
  /** Per endpoint: whether a peer is currently connected. */
  readonly linked = new Map<string, boolean>();
  /** Which of this socket's endpoints a sending endpoint reaches (endpoint matching parses strings). */
  private readonly matchCache = new Map<string, string[]>();
  private messageHandler: ((frames: ZmqFrames) => void) | undefined;
  private eventHandler: ((event: ZmqSocketEvent) => void) | undefined;
  private readonly inbox: (InboxItem | undefined)[] = [];
  private inboxHead = 0;
  private pumpScheduled = false;
  private isClosed = false;
  private readonly bus: BusCore;
  readonly endpoints: readonly string[];

  constructor(bus: BusCore, endpoints: readonly string[], topics: readonly string[]) {
    this.bus = bus;
    this.endpoints = [...endpoints];
    this.topics = topics.map((t) => encoder.encode(t));
    for (const endpoint of endpoints) this.linked.set(endpoint, false);
  }

  // Until the client sets onMessage, arrivals wait in the inbox, as they would in a socket's queue.
  get onMessage(): (frames: ZmqFrames) => void {
    return this.messageHandler ?? (() => {});
  }
  set onMessage(handler: (frames: ZmqFrames) => void) {
    this.messageHandler = handler;
    this.schedulePump();
  }
  get onEvent(): (event: ZmqSocketEvent) => void {
    return this.eventHandler ?? (() => {});
  }
  set onEvent(handler: (event: ZmqSocketEvent) => void) {
    this.eventHandler = handler;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get pending(): number {
    return this.inbox.length - this.inboxHead;
  }

  /** Whether a message sent at `endpoint` reaches this socket over a link that is not cut. */
  reaches(endpoint: string, bus: BusCore): boolean {
    let matching = this.matchCache.get(endpoint);
    if (matching === undefined) {
      matching = this.endpoints.filter((e) => endpointsMatch(e, endpoint));
      this.matchCache.set(endpoint, matching);
    }
    if (bus.cut.size === 0) return matching.length > 0;
    return matching.some((e) => !bus.isCut(e));
  }

  wants(frames: ZmqFrames): boolean {
    for (const topic of this.topics) if (startsWith(frames[0], topic)) return true;
    return false;
  }

  push(item: InboxItem): boolean {
    if (this.isClosed) return false;
    if (item.kind === "message" && this.pending >= this.bus.highWater) return false;
    this.inbox.push(item);
    this.schedulePump();
    return true;
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.messageHandler === undefined || this.pending === 0) return;
    this.pumpScheduled = true;
    this.bus.schedule(() => this.pump());
  }

  private pump(): void {
    this.pumpScheduled = false;
    // One item per microtask turn keeps delivery interleaved with the client's own promise work.
    if (this.isClosed || this.messageHandler === undefined || this.pending === 0) return;
    const item = this.inbox[this.inboxHead] as InboxItem;
    this.inbox[this.inboxHead++] = undefined;
    if (this.inboxHead > 1024 && this.inboxHead * 2 > this.inbox.length) {
      this.inbox.splice(0, this.inboxHead);
      this.inboxHead = 0;
    }
    this.schedulePump();
    if (item.kind === "message") {
      this.bus.delivered++;
      this.messageHandler(item.frames);
    } else {
      this.eventHandler?.(item.event);
    }
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.inbox.length = 0;
    this.inboxHead = 0;
    this.bus.subscribers.delete(this);
  }
}

class SimPublisher implements ZmqPublisher {
  private eventHandler: ((event: ZmqSocketEvent) => void) | undefined;
  private readonly pendingEvents: ZmqSocketEvent[] = [];
  private isClosed = false;
  /** For a connecting publisher: whether its link is up. */
  linked = false;
  private readonly bus: BusCore;
  readonly endpoint: string;
  readonly bound: boolean;

  constructor(bus: BusCore, endpoint: string, bound: boolean) {
    this.bus = bus;
    this.endpoint = endpoint;
    this.bound = bound;
  }

  // Events before the client set onEvent are kept for it, so "listening" is never missed.
  get onEvent(): (event: ZmqSocketEvent) => void {
    return this.eventHandler ?? (() => {});
  }
  set onEvent(handler: (event: ZmqSocketEvent) => void) {
    this.eventHandler = handler;
    if (this.pendingEvents.length > 0) {
      const events = this.pendingEvents.splice(0);
      this.bus.schedule(() => {
        for (const event of events) if (!this.isClosed) handler(event);
      });
    }
  }

  emit(event: ZmqSocketEvent): void {
    if (this.isClosed) return;
    if (this.eventHandler === undefined) {
      this.pendingEvents.push(event);
      return;
    }
    const handler = this.eventHandler;
    this.bus.schedule(() => {
      if (!this.isClosed) handler(event);
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(frames: readonly [string | Uint8Array, string | Uint8Array]): Promise<void> {
    if (this.isClosed) {
      return Promise.reject(Object.assign(new Error(`Socket is closed (PUB ${this.endpoint})`), { code: "EBADF" }));
    }
    this.bus.fanOut(this.endpoint, frames.map(toBytes));
    return Promise.resolve();
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.bus.publishers.delete(this);
    this.bus.refreshLinks();
  }
}

class BusCore {
  readonly subscribers = new Set<SimSubscriber>();
  readonly publishers = new Set<SimPublisher>();
  /** Endpoints whose links are cut by disconnect(). */
  readonly cut = new Set<string>();
  readonly sentBy = new Map<string, number>();
  readonly highWater: number;
  pendingTasks = 0;
  sent = 0;
  delivered = 0;
  unheard = 0;
  overflowed = 0;

  constructor(highWater: number) {
    this.highWater = highWater;
  }

  schedule(task: () => void): void {
    this.pendingTasks++;
    queueMicrotask(() => {
      this.pendingTasks--;
      task();
    });
  }

  isCut(endpoint: string): boolean {
    for (const c of this.cut) if (endpointsMatch(c, endpoint)) return true;
    return false;
  }

  /** Whether a subscriber endpoint currently has a live publisher behind it. */
  private peerFor(endpoint: string): boolean {
    if (this.isCut(endpoint)) return false;
    for (const p of this.publishers) if (endpointsMatch(p.endpoint, endpoint)) return true;
    return false;
  }

  /** Fires connected/disconnected on every socket whose link state changed. */
  refreshLinks(): void {
    for (const sub of this.subscribers) {
      for (const endpoint of sub.endpoints) {
        const up = this.peerFor(endpoint);
        if (sub.linked.get(endpoint) !== up) {
          sub.linked.set(endpoint, up);
          sub.push({ kind: "event", event: { type: up ? "connected" : "disconnected", endpoint } });
        }
      }
    }
    for (const pub of this.publishers) {
      if (pub.bound) continue; // a bound PUB listens whatever happens to its peers
      const up = !this.isCut(pub.endpoint);
      if (pub.linked !== up) {
        pub.linked = up;
        pub.emit({ type: up ? "connected" : "disconnected", endpoint: pub.endpoint });
      }
    }
  }

  /** Sends one multipart message from `endpoint` to every subscriber linked to it and subscribed to its topic. */
  fanOut(endpoint: string, frames: ZmqFrames): void {
    this.sent++;
    this.sentBy.set(endpoint, (this.sentBy.get(endpoint) ?? 0) + 1);
    let heard = false;
    if (!this.isCut(endpoint)) {
      for (const sub of this.subscribers) {
        if (!sub.wants(frames) || !sub.reaches(endpoint, this)) continue;
        if (sub.push({ kind: "message", frames })) heard = true;
        else this.overflowed++;
      }
    }
    if (!heard) this.unheard++;
  }
}

/** An in-memory ZeroMQ: one instance is one network of PUB and SUB sockets. */
export class SimBus implements ZmqTransport {
  private readonly core: BusCore;

  constructor(options: SimBusOptions = {}) {
    this.core = new BusCore(options.subscriberHighWater ?? Number.POSITIVE_INFINITY);
  }

  /**
   * A SUB socket connected to `endpoints`, subscribed to each topic prefix ("" =
   * everything; no topics = nothing, as in ZeroMQ).
   */
  subscribe(endpoints: readonly string[], topics: readonly string[]): Promise<ZmqSubscriber> {
    for (const endpoint of endpoints) {
      const invalid = validateEndpoint(endpoint);
      if (invalid !== undefined) return Promise.reject(invalid);
    }
    const sub = new SimSubscriber(this.core, endpoints, topics);
    this.core.subscribers.add(sub);
    this.core.refreshLinks();
    return Promise.resolve(sub);
  }

  /** A PUB socket; `bind` fails with EADDRINUSE when another PUB already binds a matching endpoint. */
  publish(endpoint: string, bind: boolean): Promise<ZmqPublisher> {
    const invalid = validateEndpoint(endpoint);
    if (invalid !== undefined) return Promise.reject(invalid);
    if (bind) {
      for (const other of this.core.publishers) {
        if (other.bound && endpointsMatch(other.endpoint, endpoint)) {
          return Promise.reject(
            Object.assign(new Error(`Address already in use (bind ${endpoint}: another PUB socket is bound there)`), {
              code: "EADDRINUSE",
            }),
          );
        }
      }
    }
    const pub = new SimPublisher(this.core, endpoint, bind);
    this.core.publishers.add(pub);
    if (bind) pub.emit({ type: "listening", endpoint });
    this.core.refreshLinks();
    return Promise.resolve(pub);
  }

  // --- fault injection ---

  /** Cuts the link at `endpoint`: subscribers (and connecting publishers) there see "disconnected"; sends are lost. */
  disconnect(endpoint: string): void {
    this.core.cut.add(endpoint);
    this.core.refreshLinks();
  }

  /** Restores a link cut by disconnect(): "connected" again. */
  reconnect(endpoint: string): void {
    for (const c of [...this.core.cut]) if (endpointsMatch(c, endpoint)) this.core.cut.delete(c);
    this.core.refreshLinks();
  }

  /** Injects an arbitrary multipart message at `endpoint`, as a rogue or broken publisher would send it. */
  sendRaw(endpoint: string, frames: readonly (Uint8Array | string)[]): void {
    this.core.fanOut(endpoint, frames.map(toBytes));
  }

  /** Fires an "error" event on every socket at `endpoint`. */
  emitError(endpoint: string, error: Error): void {
    for (const sub of this.core.subscribers) {
      for (const e of sub.endpoints) if (endpointsMatch(e, endpoint)) sub.push({ kind: "event", event: { type: "error", endpoint: e, error } });
    }
    for (const pub of this.core.publishers) {
      if (endpointsMatch(pub.endpoint, endpoint)) pub.emit({ type: "error", endpoint: pub.endpoint, error });
    }
  }

  // --- inspection ---

  /** Messages sent at endpoints matching `endpoint` (publishers and sendRaw); all of them without an argument. */
  sentCount(endpoint?: string): number {
    if (endpoint === undefined) return this.core.sent;
    let total = 0;
    for (const [e, n] of this.core.sentBy) if (endpointsMatch(e, endpoint)) total += n;
    return total;
  }

  /** Messages handed to subscribers' onMessage (one per subscriber). */
  get deliveredCount(): number {
    return this.core.delivered;
  }

  /** Messages no subscriber took: nobody connected, subscribed to the topic, or the link was cut. */
  get unheardCount(): number {
    return this.core.unheard;
  }

  /** Messages dropped at a subscriber's high-water mark. */
  get overflowCount(): number {
    return this.core.overflowed;
  }

  /** Open SUB sockets connected (or connecting) to a matching endpoint. */
  subscriberCount(endpoint: string): number {
    let n = 0;
    for (const sub of this.core.subscribers) if (sub.endpoints.some((e) => endpointsMatch(e, endpoint))) n++;
    return n;
  }

  /** Open PUB sockets at a matching endpoint. */
  publisherCount(endpoint: string): number {
    let n = 0;
    for (const pub of this.core.publishers) if (endpointsMatch(pub.endpoint, endpoint)) n++;
    return n;
  }

  /** Resolves once every delivery and event the bus scheduled has run. */
  async idle(): Promise<void> {
    let quiet = 0;
    for (let turn = 0; quiet < 10; turn++) {
      if (turn > 1_000_000) {
        throw new Error("SimBus.idle: still busy after 1,000,000 microtask turns; is a handler sending in a loop?");
      }
      await null;
      quiet = this.core.pendingTasks === 0 ? quiet + 1 : 0;
    }
  }
}
