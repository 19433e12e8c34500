// An in-memory AMQP 0.9.1 broker that behaves like RabbitMQ where the bridges can
// tell the difference: topic routing, confirms, mandatory returns, prefetch,
// requeue-on-close, dead-lettering, exclusive/durable queues, connection.blocked,
// topic permissions. Fault injection is explicit and deterministic: no timers, no
// randomness; every effect settles through microtasks, so machines driven by
// XState's SimulatedClock never wait on real time.
import type {
  AmqpChannel,
  AmqpConnectOptions,
  AmqpConnection,
  AmqpDelivery,
  AmqpProperties,
  AmqpReturned,
  AmqpTransport,
  QueueOptions,
} from "../transport.ts";
import { redactUrl } from "../../lib/redact.ts";

/** AMQP reply codes the simulation uses. */
export const AmqpReplyCode = {
  CONNECTION_FORCED: 320,
  NO_ROUTE: 312,
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
  COMMAND_INVALID: 503,
} as const;

/**
 * A channel or connection closed by the (simulated) broker. The message is worded
 * as @cloudamqp/amqp-client words it (`channel 1 closed: ACCESS_REFUSED - … (403)`),
 * so logs read the same in simulation and production.
 */
export class SimAmqpError extends Error {
  /** AMQP reply code, e.g. 403. */
  readonly code: number;
  /** The broker's reply text, e.g. `ACCESS_REFUSED - write access to topic …`. */
  readonly replyText: string;
  constructor(code: number, replyText: string, message: string) {
    super(message);
    this.name = "SimAmqpError";
    this.code = code;
    this.replyText = replyText;
  }
}

function channelError(channelId: number, code: number, replyText: string): SimAmqpError {
  return new SimAmqpError(code, replyText, `channel ${channelId} closed: ${replyText} (${code})`);
}

function connectionError(code: number, replyText: string): SimAmqpError {
  return new SimAmqpError(code, replyText, `connection closed: ${replyText} (${code})`);
}

/** A FIFO with O(1) push, shift and unshift (requeued messages go back to the head). */
export class Fifo<T> {
  private buf: (T | undefined)[] = new Array(16);
  private head = 0;
  private len = 0;

  get length(): number {
    return this.len;
  }

  push(value: T): void {
    if (this.len === this.buf.length) this.grow();
    this.buf[(this.head + this.len) & (this.buf.length - 1)] = value;
    this.len++;
  }

  unshift(value: T): void {
    if (this.len === this.buf.length) this.grow();
    this.head = (this.head - 1 + this.buf.length) & (this.buf.length - 1);
    this.buf[this.head] = value;
    this.len++;
  }

  shift(): T | undefined {
    if (this.len === 0) return undefined;
    const value = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) & (this.buf.length - 1);
    this.len--;
    return value;
  }

  clear(): void {
    this.buf = new Array(16);
    this.head = 0;
    this.len = 0;
  }

  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.len; i++) out.push(this.buf[(this.head + i) & (this.buf.length - 1)] as T);
    return out;
  }

  private grow(): void {
    const next: (T | undefined)[] = new Array(this.buf.length * 2);
    for (let i = 0; i < this.len; i++) next[i] = this.buf[(this.head + i) & (this.buf.length - 1)];
    this.buf = next;
    this.head = 0;
  }
}

// ---------------------------------------------------------------------------
// Topic matching

function words(key: string): string[] {
  // RabbitMQ splits "" into no words at all: "#" matches it, "*" does not.
  return key === "" ? [] : key.split(".");
}

function matchWords(pattern: readonly string[], i: number, key: readonly string[], j: number): boolean {
  while (i < pattern.length) {
    const word = pattern[i];
    if (word === "#") {
      while (i + 1 < pattern.length && pattern[i + 1] === "#") i++;
      if (i + 1 === pattern.length) return true;
      for (let skip = j; skip <= key.length; skip++) if (matchWords(pattern, i + 1, key, skip)) return true;
      return false;
    }
    if (j >= key.length) return false;
    if (word !== "*" && word !== key[j]) return false;
    i++;
    j++;
  }
  return j === key.length;
}

/** AMQP topic matching: `*` is exactly one word, `#` zero or more, words split on ".". */
export function topicMatches(bindingKey: string, routingKey: string): boolean {
  return matchWords(words(bindingKey), 0, words(routingKey), 0);
}

// ---------------------------------------------------------------------------
// Broker state

/** A message as it sits in a queue (what `queueMessages` returns). */
export interface SimQueuedMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Uint8Array;
  readonly properties: AmqpProperties;
  readonly redelivered: boolean;
}

type ExchangeType = "direct" | "fanout" | "topic";

interface Binding {
  readonly queue: Queue;
  readonly key: string;
  readonly words: readonly string[];
}

interface Exchange {
  readonly name: string;
  readonly type: ExchangeType;
  readonly durable: boolean;
  readonly builtIn: boolean;
  /** The `alternate-exchange` argument: where messages no binding matches go instead. */
  readonly alternate?: string;
  bindings: Binding[];
  /** Routing results by routing key; cleared whenever the bindings change. */
  readonly routes: Map<string, Queue[]>;
}

interface Queue {
  readonly name: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly owner: SimConnection | undefined;
  readonly arguments: Record<string, unknown>;
  readonly messages: Fifo<SimQueuedMessage>;
  consumers: Consumer[];
  nextConsumer: number;
  unacked: number;
  hadConsumer: boolean;
  deleted: boolean;
}

interface Consumer {
  readonly tag: string;
  readonly queue: Queue;
  readonly channel: SimChannel;
  readonly onDelivery: (delivery: AmqpDelivery) => void;
  /** basic.qos applies to consumers created after it (RabbitMQ, global=false). */
  readonly prefetch: number;
  unacked: number;
  cancelled: boolean;
}

interface Unacked {
  readonly queue: Queue;
  readonly consumer: Consumer;
  readonly message: SimQueuedMessage;
}

interface PendingConfirm {
  readonly seq: number;
  readonly channel: SimChannel;
  settled: boolean;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

interface PublishRequest {
  readonly channel: SimChannel;
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Uint8Array;
  readonly properties: AmqpProperties;
  readonly mandatory: boolean;
  readonly confirm: PendingConfirm | undefined;
}

interface TopicDenial {
  readonly user: string;
  readonly exchange: string;
  readonly matches: (routingKey: string) => boolean;
}

interface ParsedUrl {
  readonly user: string;
  readonly password: string;
  readonly host: string;
  readonly port: number;
  readonly vhost: string;
}

function parseAmqpUrl(url: string): ParsedUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`SimBroker: "${redactUrl(url)}" is not a URL; expected amqp://user:pass@host:port/vhost`);
  }
  if (u.protocol !== "amqp:" && u.protocol !== "amqps:") {
    throw new Error(
      `SimBroker: "${redactUrl(url)}" has scheme "${u.protocol}"; expected amqp://user:pass@host:port/vhost (or amqps://)`,
    );
  }
  const path = u.pathname.replace(/^\//, "");
  return {
    user: u.username === "" ? "guest" : decodeURIComponent(u.username),
    password: u.password === "" ? "guest" : decodeURIComponent(u.password),
    host: u.hostname === "" ? "localhost" : u.hostname,
    port: u.port === "" ? (u.protocol === "amqps:" ? 5671 : 5672) : Number(u.port),
    vhost: path === "" ? "/" : decodeURIComponent(path),
  };
}

function cloneProperties(properties: AmqpProperties): AmqpProperties {
  return properties.headers === undefined ? { ...properties } : { ...properties, headers: { ...properties.headers } };
}

function describeArg(value: unknown): string {
  return value === undefined ? "none" : `'${String(value)}'`;
}

/** Everything the broker knows; SimBroker is the public face over it. */
class BrokerCore {
  readonly exchanges = new Map<string, Exchange>();
  readonly queues = new Map<string, Queue>();
  readonly connections = new Set<SimConnection>();
  readonly denials: TopicDenial[] = [];
  /** Publishes that arrived while the broker was blocked, processed on unblock. */
  readonly blockedPublishes = new Fifo<PublishRequest>();
  /** Confirms withheld by holdConfirms(), settled in order by releaseConfirms(). */
  readonly heldConfirms = new Fifo<{ confirm: PendingConfirm; ack: boolean }>();

  down = false;
  blocked: string | undefined = undefined;
  holding = false;
  nacksPending = 0;
  pendingTasks = 0;
  serverNamed = 0;
  consumerTags = 0;

  published = 0;
  confirmed = 0;
  nacked = 0;
  returned = 0;
  delivered = 0;
  connectionsOpened = 0;

  readonly name: string;
  readonly users: Readonly<Record<string, string>> | undefined;

  constructor(name: string, users: Readonly<Record<string, string>> | undefined) {
    this.name = name;
    this.users = users;
    this.declareBuiltIns();
  }

  declareBuiltIns(): void {
    for (const [name, type] of [
      ["", "direct"],
      ["amq.direct", "direct"],
      ["amq.fanout", "fanout"],
      ["amq.topic", "topic"],
    ] as const) {
      if (!this.exchanges.has(name)) {
        this.exchanges.set(name, { name, type, durable: true, builtIn: true, bindings: [], routes: new Map() });
      }
    }
  }

  /** Every callback the broker makes goes through here, so idle() can tell when it is done. */
  schedule(task: () => void): void {
    this.pendingTasks++;
    queueMicrotask(() => {
      this.pendingTasks--;
      task();
    });
  }

  // --- routing ---

  route(exchange: Exchange, routingKey: string): Queue[] {
    if (exchange.name === "") {
      const queue = this.queues.get(routingKey);
      return queue === undefined ? [] : [queue];
    }
    const cached = exchange.routes.get(routingKey);
    if (cached !== undefined) return cached;
    const keyWords = exchange.type === "topic" ? words(routingKey) : [];
    const matched: Queue[] = [];
    for (const binding of exchange.bindings) {
      const hit =
        exchange.type === "fanout" ||
        (exchange.type === "direct" && binding.key === routingKey) ||
        (exchange.type === "topic" && matchWords(binding.words, 0, keyWords, 0));
      if (hit && !matched.includes(binding.queue)) matched.push(binding.queue);
    }
    if (exchange.routes.size >= 4096) exchange.routes.clear();
    exchange.routes.set(routingKey, matched);
    return matched;
  }

  enqueue(queue: Queue, message: SimQueuedMessage): void {
    queue.messages.push(message);
    this.dispatch(queue);
  }

  /** Hands ready messages to consumers with prefetch room, round-robin. */
  dispatch(queue: Queue): void {
    while (queue.messages.length > 0 && !queue.deleted) {
      const consumer = this.nextConsumerWithRoom(queue);
      if (consumer === undefined) return;
      consumer.channel.deliver(consumer, queue.messages.shift() as SimQueuedMessage);
    }
  }

  private nextConsumerWithRoom(queue: Queue): Consumer | undefined {
    const n = queue.consumers.length;
    for (let k = 0; k < n; k++) {
      const index = (queue.nextConsumer + k) % n;
      const consumer = queue.consumers[index];
      if (consumer.prefetch === 0 || consumer.unacked < consumer.prefetch) {
        queue.nextConsumer = (index + 1) % n;
        return consumer;
      }
    }
    return undefined;
  }

  /** Republishes a rejected message to the queue's dead-letter exchange, if it has one. */
  deadLetter(queue: Queue, message: SimQueuedMessage, reason: "rejected"): void {
    const dlxName = queue.arguments["x-dead-letter-exchange"];
    if (typeof dlxName !== "string") return;
    const dlx = this.exchanges.get(dlxName);
    if (dlx === undefined) return; // RabbitMQ drops silently when the DLX is missing
    const dlRoutingKey = queue.arguments["x-dead-letter-routing-key"];
    const routingKey = typeof dlRoutingKey === "string" ? dlRoutingKey : message.routingKey;
    const headers: Record<string, unknown> = { ...(message.properties.headers ?? {}) };
    const previous = Array.isArray(headers["x-death"]) ? (headers["x-death"] as Record<string, unknown>[]) : [];
    const same = previous.find((d) => d.queue === queue.name && d.reason === reason);
    const others = previous.filter((d) => d !== same);
    const count = same !== undefined && typeof same.count === "number" ? same.count + 1 : 1;
    headers["x-death"] = [
      { count, reason, queue: queue.name, exchange: message.exchange, "routing-keys": [message.routingKey] },
      ...others,
    ];
    if (headers["x-first-death-queue"] === undefined) {
      headers["x-first-death-queue"] = queue.name;
      headers["x-first-death-reason"] = reason;
      headers["x-first-death-exchange"] = message.exchange;
    }
    const deadLettered: SimQueuedMessage = {
      exchange: dlxName,
      routingKey,
      body: message.body,
      properties: { ...message.properties, headers },
      redelivered: false,
    };
    for (const target of this.route(dlx, routingKey)) this.enqueue(target, deadLettered);
  }

  // --- publishing ---

  processPublish(request: PublishRequest): void {
    const { channel } = request;
    if (channel.closed) return; // its confirm was already rejected when it closed
    const exchange = this.exchanges.get(request.exchange);
    if (exchange === undefined) {
      channel.fail(
        AmqpReplyCode.NOT_FOUND,
        `NOT_FOUND - no exchange '${request.exchange}' in vhost '${channel.connection.vhost}'`,
      );
      return;
    }
    const user = channel.connection.user;
    for (const denial of this.denials) {
      if (denial.user === user && denial.exchange === request.exchange && denial.matches(request.routingKey)) {
        channel.fail(
          AmqpReplyCode.ACCESS_REFUSED,
          `ACCESS_REFUSED - write access to topic '${request.routingKey}' in exchange '${request.exchange}' ` +
            `in vhost '${channel.connection.vhost}' refused for user '${user}'`,
        );
        return;
      }
    }
    this.published++;
    if (request.confirm !== undefined && this.nacksPending > 0) {
      // A nacked message is one the broker lost: it is not routed.
      this.nacksPending--;
      this.confirm(request.confirm, false);
      return;
    }
    let queues = this.route(exchange, request.routingKey);
    // As RabbitMQ: an unroutable message goes to the alternate exchange, if any, and is not returned.
    const alternate = queues.length === 0 && exchange.alternate !== undefined ? this.exchanges.get(exchange.alternate) : undefined;
    if (alternate) queues = this.route(alternate, request.routingKey);
    if (queues.length > 0) {
      const message: SimQueuedMessage = {
        exchange: request.exchange,
        routingKey: request.routingKey,
        body: request.body,
        properties: request.properties,
        redelivered: false,
      };
      for (const queue of queues) this.enqueue(queue, message);
    } else if (request.mandatory) {
      // basic.return goes out before the ack, as RabbitMQ orders them.
      this.returned++;
      const returned: AmqpReturned = {
        replyCode: AmqpReplyCode.NO_ROUTE,
        replyText: "NO_ROUTE",
        exchange: request.exchange,
        routingKey: request.routingKey,
        properties: request.properties,
      };
      this.schedule(() => {
        if (!channel.closed) channel.onReturn(returned);
      });
    }
    if (request.confirm !== undefined) this.confirm(request.confirm, true);
  }

  private confirm(confirm: PendingConfirm, ack: boolean): void {
    if (this.holding) this.heldConfirms.push({ confirm, ack });
    else this.schedule(() => this.settle(confirm, ack));
  }

  settle(confirm: PendingConfirm, ack: boolean): void {
    if (confirm.settled) return;
    confirm.settled = true;
    confirm.channel.pendingConfirms.delete(confirm.seq);
    if (ack) {
      this.confirmed++;
      confirm.resolve();
    } else {
      this.nacked++;
      confirm.reject(
        new SimAmqpError(0, "nack", `Message rejected: the broker nacked publish ${confirm.seq} on channel ${confirm.channel.id}`),
      );
    }
  }

  releaseHeld(count: number): number {
    let released = 0;
    while (released < count && this.heldConfirms.length > 0) {
      const { confirm, ack } = this.heldConfirms.shift() as { confirm: PendingConfirm; ack: boolean };
      if (confirm.settled) continue;
      this.schedule(() => this.settle(confirm, ack));
      released++;
    }
    return released;
  }

  // --- topology ---

  deleteQueue(queue: Queue): void {
    if (queue.deleted) return;
    queue.deleted = true;
    this.queues.delete(queue.name);
    for (const exchange of this.exchanges.values()) {
      const kept = exchange.bindings.filter((b) => b.queue !== queue);
      if (kept.length !== exchange.bindings.length) {
        exchange.bindings = kept;
        exchange.routes.clear();
      }
    }
    // RabbitMQ cancels the consumers; their channels stay open.
    for (const consumer of queue.consumers) {
      consumer.cancelled = true;
      consumer.channel.consumers.delete(consumer.tag);
    }
    queue.consumers = [];
    queue.messages.clear();
  }

  deleteExchange(exchange: Exchange): void {
    this.exchanges.delete(exchange.name);
  }

  removeConsumer(consumer: Consumer): void {
    if (consumer.cancelled) return;
    consumer.cancelled = true;
    const queue = consumer.queue;
    queue.consumers = queue.consumers.filter((c) => c !== consumer);
    if (queue.nextConsumer >= queue.consumers.length) queue.nextConsumer = 0;
  }

  maybeAutoDelete(queue: Queue): void {
    if (queue.autoDelete && queue.hadConsumer && queue.consumers.length === 0) this.deleteQueue(queue);
  }

  closeConnection(connection: SimConnection, reason: Error | undefined): void {
    if (!connection.markClosed()) return;
    this.connections.delete(connection);
    for (const channel of [...connection.channels.values()]) channel.shutdown(reason);
    for (const queue of [...this.queues.values()]) if (queue.owner === connection) this.deleteQueue(queue);
    this.schedule(() => connection.onClose(reason));
  }

  /** A node restart: only durable things come back. */
  dropTransientState(): void {
    for (const queue of [...this.queues.values()]) if (!queue.durable) this.deleteQueue(queue);
    for (const exchange of [...this.exchanges.values()]) if (!exchange.durable) this.deleteExchange(exchange);
    for (const exchange of this.exchanges.values()) exchange.routes.clear();
    this.blockedPublishes.clear();
    this.heldConfirms.clear();
  }
}

// ---------------------------------------------------------------------------
// Connection and channel

class SimConnection implements AmqpConnection {
  onClose: (reason?: Error) => void = () => {};
  onBlocked: (reason: string) => void = () => {};
  onUnblocked: () => void = () => {};
  readonly channels = new Map<number, SimChannel>();
  /** Whether this connection has been sent connection.blocked and not yet unblocked. */
  blockedNotified = false;
  private isClosed = false;
  private nextChannelId = 1;
  readonly core: BrokerCore;
  readonly name: string | undefined;
  readonly user: string;
  readonly vhost: string;

  constructor(core: BrokerCore, name: string | undefined, user: string, vhost: string) {
    this.core = core;
    this.name = name;
    this.user = user;
    this.vhost = vhost;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Returns false when it was already closed. */
  markClosed(): boolean {
    if (this.isClosed) return false;
    this.isClosed = true;
    return true;
  }

  openChannel(): Promise<AmqpChannel> {
    if (this.isClosed) return Promise.reject(new Error("Connection closed"));
    const channel = new SimChannel(this, this.nextChannelId++);
    this.channels.set(channel.id, channel);
    return Promise.resolve(channel);
  }

  notifyBlocked(reason: string): void {
    if (this.blockedNotified || this.isClosed) return;
    this.blockedNotified = true;
    this.core.schedule(() => {
      if (!this.isClosed) this.onBlocked(reason);
    });
  }

  notifyUnblocked(): void {
    if (!this.blockedNotified || this.isClosed) return;
    this.blockedNotified = false;
    this.core.schedule(() => {
      if (!this.isClosed) this.onUnblocked();
    });
  }

  close(): Promise<void> {
    this.core.closeConnection(this, undefined);
    return Promise.resolve();
  }
}

class SimChannel implements AmqpChannel {
  onReturn: (returned: AmqpReturned) => void = () => {};
  onClose: (reason?: Error) => void = () => {};
  readonly consumers = new Map<string, Consumer>();
  readonly pendingConfirms = new Map<number, PendingConfirm>();
  /** Delivered, not yet acked, in delivery-tag order (Map keeps insertion order). */
  readonly unacked = new Map<number, Unacked>();
  private isClosed = false;
  private confirmMode = false;
  private prefetchCount = 0;
  private nextDeliveryTag = 1;
  private nextPublishSeq = 1;
  private readonly core: BrokerCore;
  readonly connection: SimConnection;
  readonly id: number;

  constructor(connection: SimConnection, id: number) {
    this.connection = connection;
    this.id = id;
    this.core = connection.core;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  private rejectClosed<T>(): Promise<T> {
    return Promise.reject(new Error(`Channel is closed (channel ${this.id})`));
  }

  /** The broker closes the channel with an error; returns that error for convenience. */
  fail(code: number, replyText: string): SimAmqpError {
    const error = channelError(this.id, code, replyText);
    this.shutdown(error);
    return error;
  }

  private refuse<T>(code: number, replyText: string): Promise<T> {
    return Promise.reject(this.fail(code, replyText));
  }

  confirmSelect(): Promise<void> {
    if (this.isClosed) return this.rejectClosed();
    this.confirmMode = true;
    return Promise.resolve();
  }

  prefetch(count: number): Promise<void> {
    if (this.isClosed) return this.rejectClosed();
    this.prefetchCount = Math.max(0, Math.floor(count));
    return Promise.resolve();
  }

  exchangeDeclare(name: string, type: string, durable: boolean, args?: Record<string, unknown>): Promise<void> {
    if (this.isClosed) return this.rejectClosed();
    const vhost = this.connection.vhost;
    const existing = this.core.exchanges.get(name);
    if (existing !== undefined) {
      if (name === "") {
        return this.refuse(AmqpReplyCode.ACCESS_REFUSED, "ACCESS_REFUSED - operation not permitted on the default exchange");
      }
      if (existing.type !== type) {
        return this.refuse(
          AmqpReplyCode.PRECONDITION_FAILED,
          `PRECONDITION_FAILED - inequivalent arg 'type' for exchange '${name}' in vhost '${vhost}': received '${type}' but current is '${existing.type}'`,
        );
      }
      if (existing.durable !== durable) {
        return this.refuse(
          AmqpReplyCode.PRECONDITION_FAILED,
          `PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '${name}' in vhost '${vhost}': received '${durable}' but current is '${existing.durable}'`,
        );
      }
      return Promise.resolve();
    }
    if (name.startsWith("amq.")) {
      return this.refuse(
        AmqpReplyCode.ACCESS_REFUSED,
        `ACCESS_REFUSED - exchange name '${name}' contains reserved prefix 'amq.*'`,
      );
    }
    if (type !== "topic" && type !== "direct" && type !== "fanout") {
      return this.refuse(
        AmqpReplyCode.COMMAND_INVALID,
        `COMMAND_INVALID - unknown exchange type '${type}' (the simulation supports topic, direct and fanout)`,
      );
    }
    const alternate = typeof args?.["alternate-exchange"] === "string" ? (args["alternate-exchange"] as string) : undefined;
    this.core.exchanges.set(name, { name, type, durable, builtIn: false, alternate, bindings: [], routes: new Map() });
    return Promise.resolve();
  }

  queueDeclare(name: string, options: QueueOptions): Promise<string> {
    if (this.isClosed) return this.rejectClosed();
    const vhost = this.connection.vhost;
    const durable = options.durable ?? false;
    const autoDelete = options.autoDelete ?? false;
    const exclusive = options.exclusive ?? false;
    const args = options.arguments ?? {};
    const existing = name === "" ? undefined : this.core.queues.get(name);
    if (existing !== undefined) {
      if (existing.owner !== undefined && existing.owner !== this.connection) return this.locked(name);
      if (existing.durable !== durable || existing.autoDelete !== autoDelete) {
        const [arg, received, current] =
          existing.durable !== durable
            ? ["durable", durable, existing.durable]
            : ["auto_delete", autoDelete, existing.autoDelete];
        return this.refuse(
          AmqpReplyCode.PRECONDITION_FAILED,
          `PRECONDITION_FAILED - inequivalent arg '${arg}' for queue '${name}' in vhost '${vhost}': received '${received}' but current is '${current}'`,
        );
      }
      for (const key of new Set([...Object.keys(args), ...Object.keys(existing.arguments)])) {
        if (JSON.stringify(args[key]) !== JSON.stringify(existing.arguments[key])) {
          return this.refuse(
            AmqpReplyCode.PRECONDITION_FAILED,
            `PRECONDITION_FAILED - inequivalent arg '${key}' for queue '${name}' in vhost '${vhost}': received ${describeArg(args[key])} but current is ${describeArg(existing.arguments[key])}`,
          );
        }
      }
      return Promise.resolve(name);
    }
    if (name.startsWith("amq.")) {
      return this.refuse(
        AmqpReplyCode.ACCESS_REFUSED,
        `ACCESS_REFUSED - queue name '${name}' contains reserved prefix 'amq.*'`,
      );
    }
    const queueName = name === "" ? `amq.gen-sim${String(++this.core.serverNamed).padStart(6, "0")}` : name;
    this.core.queues.set(queueName, {
      name: queueName,
      durable,
      autoDelete,
      owner: exclusive ? this.connection : undefined,
      arguments: { ...args },
      messages: new Fifo(),
      consumers: [],
      nextConsumer: 0,
      unacked: 0,
      hadConsumer: false,
      deleted: false,
    });
    return Promise.resolve(queueName);
  }

  private locked<T>(queue: string): Promise<T> {
    return this.refuse(
      AmqpReplyCode.RESOURCE_LOCKED,
      `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${queue}' in vhost '${this.connection.vhost}'. ` +
        "It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.",
    );
  }

  private noQueue<T>(queue: string): Promise<T> {
    return this.refuse(AmqpReplyCode.NOT_FOUND, `NOT_FOUND - no queue '${queue}' in vhost '${this.connection.vhost}'`);
  }

  queueBind(queue: string, exchange: string, bindingKey: string): Promise<void> {
    if (this.isClosed) return this.rejectClosed();
    const q = this.core.queues.get(queue);
    if (q === undefined) return this.noQueue(queue);
    if (q.owner !== undefined && q.owner !== this.connection) return this.locked(queue);
    if (exchange === "") {
      return this.refuse(AmqpReplyCode.ACCESS_REFUSED, "ACCESS_REFUSED - operation not permitted on the default exchange");
    }
    const ex = this.core.exchanges.get(exchange);
    if (ex === undefined) {
      return this.refuse(AmqpReplyCode.NOT_FOUND, `NOT_FOUND - no exchange '${exchange}' in vhost '${this.connection.vhost}'`);
    }
    if (!ex.bindings.some((b) => b.queue === q && b.key === bindingKey)) {
      ex.bindings.push({ queue: q, key: bindingKey, words: words(bindingKey) });
      ex.routes.clear();
    }
    return Promise.resolve();
  }

  queueDelete(name: string): Promise<void> {
    if (this.isClosed) return this.rejectClosed();
    const queue = this.core.queues.get(name);
    if (queue === undefined) return Promise.resolve();
    if (queue.owner !== undefined && queue.owner !== this.connection) return this.locked(name);
    this.core.deleteQueue(queue);
    return Promise.resolve();
  }

  exchangeDelete(name: string): Promise<void> {
    if (this.isClosed) return this.rejectClosed();
    const exchange = this.core.exchanges.get(name);
    if (exchange === undefined) return Promise.resolve();
    if (exchange.builtIn) {
      return this.refuse(
        AmqpReplyCode.ACCESS_REFUSED,
        `ACCESS_REFUSED - operation not permitted on exchange '${name === "" ? "(AMQP default)" : name}' in vhost '${this.connection.vhost}'`,
      );
    }
    this.core.deleteExchange(exchange);
    return Promise.resolve();
  }

  publish(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: AmqpProperties,
    mandatory: boolean,
  ): Promise<void> {
    if (this.isClosed) return this.rejectClosed();
    let confirm: PendingConfirm | undefined;
    let result: Promise<void>;
    if (this.confirmMode) {
      const seq = this.nextPublishSeq++;
      let pending: PendingConfirm | undefined;
      result = new Promise<void>((resolve, reject) => {
        pending = { seq, channel: this, settled: false, resolve, reject };
      });
      confirm = pending as PendingConfirm;
      this.pendingConfirms.set(seq, confirm);
    } else {
      result = Promise.resolve();
    }
    // The publisher may reuse its buffer once publish returns.
    const request: PublishRequest = {
      channel: this,
      exchange,
      routingKey,
      body: body.slice(),
      properties: cloneProperties(properties),
      mandatory,
      confirm,
    };
    if (this.core.blocked !== undefined) {
      // RabbitMQ stops reading a blocked publisher's socket: nothing is routed or
      // confirmed until the alarm clears.
      this.connection.notifyBlocked(this.core.blocked);
      this.core.blockedPublishes.push(request);
    } else {
      this.core.processPublish(request);
    }
    return result;
  }

  consume(queue: string, onDelivery: (delivery: AmqpDelivery) => void): Promise<string> {
    if (this.isClosed) return this.rejectClosed();
    const q = this.core.queues.get(queue);
    if (q === undefined) return this.noQueue(queue);
    if (q.owner !== undefined && q.owner !== this.connection) return this.locked(queue);
    const tag = `amq.ctag-sim${String(++this.core.consumerTags).padStart(6, "0")}`;
    const consumer: Consumer = {
      tag,
      queue: q,
      channel: this,
      onDelivery,
      prefetch: this.prefetchCount,
      unacked: 0,
      cancelled: false,
    };
    q.consumers.push(consumer);
    q.hadConsumer = true;
    this.consumers.set(tag, consumer);
    // consume-ok reaches the client before the first delivery.
    this.core.schedule(() => this.core.dispatch(q));
    return Promise.resolve(tag);
  }

  deliver(consumer: Consumer, message: SimQueuedMessage): void {
    const deliveryTag = this.nextDeliveryTag++;
    const entry: Unacked = { queue: consumer.queue, consumer, message };
    this.unacked.set(deliveryTag, entry);
    consumer.unacked++;
    consumer.queue.unacked++;
    this.core.delivered++;
    const delivery: AmqpDelivery = {
      deliveryTag,
      exchange: message.exchange,
      routingKey: message.routingKey,
      redelivered: message.redelivered,
      body: message.body,
      properties: message.properties,
    };
    this.core.schedule(() => {
      // Closed in between: the message went back to its queue, the client never sees it.
      if (this.isClosed || this.unacked.get(deliveryTag) !== entry) return;
      consumer.onDelivery(delivery);
    });
  }

  private settleDelivery(deliveryTag: number, entry: Unacked): void {
    this.unacked.delete(deliveryTag);
    entry.consumer.unacked--;
    entry.queue.unacked--;
  }

  private unknownTag(deliveryTag: number): void {
    this.fail(AmqpReplyCode.PRECONDITION_FAILED, `PRECONDITION_FAILED - unknown delivery tag ${deliveryTag}`);
  }

  ack(deliveryTag: number, multiple: boolean): void {
    if (this.isClosed) return;
    if (!multiple) {
      const entry = this.unacked.get(deliveryTag);
      if (entry === undefined) return this.unknownTag(deliveryTag);
      this.settleDelivery(deliveryTag, entry);
      this.core.dispatch(entry.queue);
      return;
    }
    if (deliveryTag !== 0 && deliveryTag >= this.nextDeliveryTag) return this.unknownTag(deliveryTag);
    const touched = new Set<Queue>();
    for (const [tag, entry] of this.unacked) {
      if (deliveryTag !== 0 && tag > deliveryTag) break;
      this.settleDelivery(tag, entry);
      touched.add(entry.queue);
    }
    for (const queue of touched) this.core.dispatch(queue);
  }

  reject(deliveryTag: number, requeue: boolean): void {
    if (this.isClosed) return;
    const entry = this.unacked.get(deliveryTag);
    if (entry === undefined) return this.unknownTag(deliveryTag);
    this.settleDelivery(deliveryTag, entry);
    const { queue, message } = entry;
    if (queue.deleted) return;
    if (requeue) queue.messages.unshift({ ...message, redelivered: true });
    else this.core.deadLetter(queue, message, "rejected");
    this.core.dispatch(queue);
  }

  close(): Promise<void> {
    if (!this.isClosed) this.shutdown(undefined);
    return Promise.resolve();
  }

  /**
   * Closes the channel: pending confirms reject, consumers go, unacked deliveries
   * return to the head of their queues with redelivered=true, as RabbitMQ does.
   */
  shutdown(reason: Error | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.connection.channels.delete(this.id);
    const confirmError = reason ?? new Error(`Channel ${this.id} closed before the broker confirmed the publish`);
    for (const confirm of this.pendingConfirms.values()) {
      confirm.settled = true;
      confirm.reject(confirmError);
    }
    this.pendingConfirms.clear();
    const touched = new Set<Queue>();
    for (const consumer of this.consumers.values()) {
      this.core.removeConsumer(consumer);
      touched.add(consumer.queue);
    }
    this.consumers.clear();
    const entries = [...this.unacked.values()];
    this.unacked.clear();
    for (let i = entries.length - 1; i >= 0; i--) {
      const { queue, consumer, message } = entries[i];
      consumer.unacked--;
      queue.unacked--;
      if (queue.deleted) continue;
      queue.messages.unshift({ ...message, redelivered: true });
      touched.add(queue);
    }
    for (const queue of touched) {
      this.core.maybeAutoDelete(queue);
      this.core.dispatch(queue);
    }
    this.core.schedule(() => this.onClose(reason));
  }
}

// ---------------------------------------------------------------------------
// The broker

export interface SimBrokerOptions {
  /** Used in error messages ("simulated broker 'main' is down"). */
  name?: string;
  /** When given, connects must present one of these user/password pairs. */
  users?: Readonly<Record<string, string>>;
}

/**
 * An in-memory RabbitMQ. One instance is one broker (one namespace for all vhosts);
 * `connect` accepts any host, so route by host with `routeByHost` when a test needs two.
 */
export class SimBroker implements AmqpTransport {
  private readonly core: BrokerCore;

  constructor(options: SimBrokerOptions = {}) {
    this.core = new BrokerCore(options.name ?? "sim", options.users);
  }

  connect(url: string, options: AmqpConnectOptions = {}): Promise<AmqpConnection> {
    let parsed: ParsedUrl;
    try {
      parsed = parseAmqpUrl(url);
    } catch (error) {
      return Promise.reject(error);
    }
    const core = this.core;
    if (core.down) {
      const error = new Error(
        `connect ECONNREFUSED ${parsed.host}:${parsed.port} (simulated broker '${core.name}' is stopped; call start())`,
      );
      return Promise.reject(Object.assign(error, { code: "ECONNREFUSED" }));
    }
    if (core.users !== undefined && core.users[parsed.user] !== parsed.password) {
      return Promise.reject(
        connectionError(
          AmqpReplyCode.ACCESS_REFUSED,
          "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.",
        ),
      );
    }
    const connection = new SimConnection(core, options.name, parsed.user, parsed.vhost);
    core.connections.add(connection);
    core.connectionsOpened++;
    return Promise.resolve(connection);
  }

  // --- fault injection ---

  /** Like `rabbitmqctl close_all_connections`: every connection's onClose fires, pending confirms reject. */
  closeAllConnections(reason = "Closed via rabbitmqctl"): void {
    const error = connectionError(AmqpReplyCode.CONNECTION_FORCED, `CONNECTION_FORCED - ${reason}`);
    for (const connection of [...this.core.connections]) this.core.closeConnection(connection, error);
  }

  /** Stops the node: connections close, connects are refused, non-durable queues and exchanges are gone. */
  stop(): void {
    const core = this.core;
    const error = connectionError(
      AmqpReplyCode.CONNECTION_FORCED,
      "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'",
    );
    for (const connection of [...core.connections]) core.closeConnection(connection, error);
    core.down = true;
    core.blocked = undefined; // a restarted node re-evaluates its alarms
    core.dropTransientState();
  }

  /** Starts a stopped node; connects succeed again. */
  start(): void {
    this.core.down = false;
    this.core.declareBuiltIns();
  }

  /** stop() then start(): durable queues keep their messages (unacked ones come back redelivered). */
  restart(): void {
    this.stop();
    this.start();
  }

  /**
   * A resource alarm: connection.blocked on every connection (and on any later one
   * at its first publish). Publishes are accepted but neither routed nor confirmed
   * until unblock().
   */
  block(reason = "low on memory"): void {
    const core = this.core;
    core.blocked = reason;
    for (const connection of core.connections) connection.notifyBlocked(reason);
  }

  /** Clears the alarm: connection.unblocked, then the held publishes are processed in order. */
  unblock(): void {
    const core = this.core;
    if (core.blocked === undefined) return;
    core.blocked = undefined;
    for (const connection of core.connections) connection.notifyUnblocked();
    while (core.blockedPublishes.length > 0) {
      core.processPublish(core.blockedPublishes.shift() as PublishRequest);
    }
  }

  /** The next `count` confirm-mode publishes are nacked (and not routed). */
  nackNext(count = 1): void {
    this.core.nacksPending += count;
  }

  /**
   * A topic permission: a publish by `user` to `exchange` whose routing key matches
   * `routingKeyPattern` (AMQP topic syntax with `*` and `#`, or a RegExp) closes the
   * channel with 403 ACCESS_REFUSED, naming user, exchange and routing key.
   */
  denyTopic(user: string, exchange: string, routingKeyPattern: string | RegExp): void {
    const matches =
      typeof routingKeyPattern === "string"
        ? (key: string) => topicMatches(routingKeyPattern, key)
        : (key: string) => routingKeyPattern.test(key);
    this.core.denials.push({ user, exchange, matches });
  }

  /** Removes every denyTopic rule. */
  clearTopicDenials(): void {
    this.core.denials.length = 0;
  }

  /** From now on confirms (acks and nacks) are withheld until releaseConfirms(). */
  holdConfirms(): void {
    this.core.holding = true;
  }

  /**
   * Settles the withheld confirms in publish order — all of them, or the oldest
   * `count` (holding then continues). Returns how many were released.
   */
  releaseConfirms(count?: number): number {
    const core = this.core;
    if (count === undefined) {
      core.holding = false;
      return core.releaseHeld(Number.POSITIVE_INFINITY);
    }
    return core.releaseHeld(count);
  }

  /** Routes a message straight into the broker, as if published by an unseen client. Returns how many queues took it. */
  inject(exchange: string, routingKey: string, body: Uint8Array | string, properties: AmqpProperties = {}): number {
    const core = this.core;
    const ex = core.exchanges.get(exchange);
    if (ex === undefined) {
      throw new Error(`SimBroker.inject: no exchange '${exchange}'; declare it first (known: ${[...core.exchanges.keys()].join(", ")})`);
    }
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body.slice();
    const message: SimQueuedMessage = { exchange, routingKey, body: bytes, properties: cloneProperties(properties), redelivered: false };
    core.published++;
    const queues = core.route(ex, routingKey);
    for (const queue of queues) core.enqueue(queue, message);
    return queues.length;
  }

  // --- inspection ---

  /** Resolves once every callback the broker scheduled, and what they set off in the same breath, has run. */
  async idle(): Promise<void> {
    let quiet = 0;
    for (let turn = 0; quiet < 10; turn++) {
      if (turn > 1_000_000) {
        throw new Error("SimBroker.idle: still busy after 1,000,000 microtask turns; is a client publishing in a loop?");
      }
      await null;
      quiet = this.core.pendingTasks === 0 ? quiet + 1 : 0;
    }
  }

  private queue(name: string, caller: string): Queue {
    const queue = this.core.queues.get(name);
    if (queue === undefined) {
      const known = [...this.core.queues.keys()];
      throw new Error(
        `SimBroker.${caller}: no queue '${name}' (queues: ${known.length === 0 ? "none" : known.join(", ")}); check hasQueue() first`,
      );
    }
    return queue;
  }

  /** The messages ready in a queue, oldest first (not the unacked ones). */
  queueMessages(queue: string): SimQueuedMessage[] {
    return this.queue(queue, "queueMessages").messages.toArray();
  }

  /** Ready messages in a queue. */
  messageCount(queue: string): number {
    return this.queue(queue, "messageCount").messages.length;
  }

  /** Delivered but not yet acked or rejected. */
  unacked(queue: string): number {
    return this.queue(queue, "unacked").unacked;
  }

  consumerCount(queue: string): number {
    return this.queue(queue, "consumerCount").consumers.length;
  }

  hasQueue(name: string): boolean {
    return this.core.queues.has(name);
  }

  hasExchange(name: string): boolean {
    return this.core.exchanges.has(name);
  }

  queueNames(): string[] {
    return [...this.core.queues.keys()];
  }

  /** Binding keys of `queue` on `exchange`. */
  bindingKeys(exchange: string, queue: string): string[] {
    const ex = this.core.exchanges.get(exchange);
    return ex === undefined ? [] : ex.bindings.filter((b) => b.queue.name === queue).map((b) => b.key);
  }

  /** Publishes the broker processed (routed, unroutable or nacked; not refused ones), plus inject(). */
  get published(): number {
    return this.core.published;
  }
  get confirmed(): number {
    return this.core.confirmed;
  }
  get nacked(): number {
    return this.core.nacked;
  }
  /** Mandatory publishes returned with NO_ROUTE. */
  get returned(): number {
    return this.core.returned;
  }
  /** Deliveries made to consumers, redeliveries included. */
  get delivered(): number {
    return this.core.delivered;
  }
  /** Open connections. */
  get connectionCount(): number {
    return this.core.connections.size;
  }
  /** Connections ever accepted. */
  get connectionsOpened(): number {
    return this.core.connectionsOpened;
  }
  /** The `name` of each open connection, as the management UI would show it. */
  connectionNames(): (string | undefined)[] {
    return [...this.core.connections].map((c) => c.name);
  }
  /** Confirms withheld by holdConfirms(). */
  get heldConfirmCount(): number {
    return this.core.heldConfirms.length;
  }
  /** Publishes waiting for unblock(). */
  get blockedPublishCount(): number {
    return this.core.blockedPublishes.length;
  }
  get isDown(): boolean {
    return this.core.down;
  }
  get isBlocked(): boolean {
    return this.core.blocked !== undefined;
  }
}

/** An AmqpTransport over several simulated brokers, chosen by the URL's host:port. */
export function routeByHost(brokers: Readonly<Record<string, AmqpTransport>>): AmqpTransport {
  return {
    connect(url: string, options: AmqpConnectOptions): Promise<AmqpConnection> {
      let parsed: ParsedUrl;
      try {
        parsed = parseAmqpUrl(url);
      } catch (error) {
        return Promise.reject(error);
      }
      const key = `${parsed.host}:${parsed.port}`;
      const broker = brokers[key];
      if (broker === undefined) {
        const error = new Error(`connect ECONNREFUSED ${key} (no simulated broker there; known: ${Object.keys(brokers).join(", ")})`);
        return Promise.reject(Object.assign(error, { code: "ECONNREFUSED" }));
      }
      return broker.connect(url, options);
    },
  };
}

/** Lets `turns` rounds of microtasks run: for tests that drive simulations without a broker to ask. */
export async function flushMicrotasks(turns = 50): Promise<void> {
  for (let i = 0; i < turns; i++) await null;
}
