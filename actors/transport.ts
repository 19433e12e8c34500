// The seams between the machines and the world. Production implements them over
// @cloudamqp/amqp-client and zeromq (actors/amqp.ts, actors/zmq.ts); tests implement
// them in memory with fault injection (actors/sim/). Machines never see either.

/** AMQP message properties, named as fedora-messaging and the AMQP spec name them. */
export interface AmqpProperties {
  contentType?: string;
  contentEncoding?: string;
  deliveryMode?: number;
  messageId?: string;
  priority?: number;
  timestamp?: Date;
  headers?: Record<string, unknown>;
}

export interface AmqpDelivery {
  /** Delivery tag, meaningful only on the channel that delivered it. */
  readonly deliveryTag: number;
  readonly exchange: string;
  readonly routingKey: string;
  readonly redelivered: boolean;
  readonly body: Uint8Array;
  readonly properties: AmqpProperties;
}

export interface AmqpReturned {
  readonly replyCode: number;
  readonly replyText: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: AmqpProperties;
}

export interface QueueOptions {
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  arguments?: Record<string, unknown>;
}

export interface AmqpChannel {
  readonly id: number;
  confirmSelect(): Promise<void>;
  prefetch(count: number): Promise<void>;
  exchangeDeclare(name: string, type: string, durable: boolean, args?: Record<string, unknown>): Promise<void>;
  /** Returns the queue name (server-named when `name` is ""). */
  queueDeclare(name: string, options: QueueOptions): Promise<string>;
  queueBind(queue: string, exchange: string, bindingKey: string): Promise<void>;
  queueDelete(name: string): Promise<void>;
  exchangeDelete(name: string): Promise<void>;
  /**
   * In confirm mode the promise settles on the broker's ack (resolve) or nack
   * (reject), or rejects when the channel closes before either arrived.
   */
  publish(exchange: string, routingKey: string, body: Uint8Array, properties: AmqpProperties, mandatory: boolean): Promise<void>;
  consume(queue: string, onDelivery: (delivery: AmqpDelivery) => void): Promise<string>;
  ack(deliveryTag: number, multiple: boolean): void;
  reject(deliveryTag: number, requeue: boolean): void;
  /** Called for each `basic.return` (mandatory publish that no queue took). */
  onReturn: (returned: AmqpReturned) => void;
  /** Called once when the channel closes, with the broker's reason if it closed it. */
  onClose: (reason?: Error) => void;
  readonly closed: boolean;
  close(): Promise<void>;
}

export interface AmqpConnection {
  openChannel(): Promise<AmqpChannel>;
  /** Called once when the connection is lost or closed. */
  onClose: (reason?: Error) => void;
  /** `connection.blocked` / `connection.unblocked` (resource alarms). */
  onBlocked: (reason: string) => void;
  onUnblocked: () => void;
  readonly closed: boolean;
  close(): Promise<void>;
}

export interface AmqpTransport {
  connect(url: string, options: AmqpConnectOptions): Promise<AmqpConnection>;
}

export interface AmqpConnectOptions {
  /** Connection name shown in the broker's management UI. */
  name?: string;
  heartbeatSeconds?: number;
  tls?: { caCert?: string; certFile?: string; keyFile?: string; insecure?: boolean };
}

/** Two frames for fedmsg, but a socket hands over whatever arrived, to be judged by the schema. */
export type ZmqFrames = readonly Uint8Array[];

export interface ZmqSubscriber {
  /** Each received multipart message, as raw frames. */
  onMessage: (frames: ZmqFrames) => void;
  /** Transport-level events (connected, disconnected, retried) per endpoint. */
  onEvent: (event: ZmqSocketEvent) => void;
  close(): void;
}

export interface ZmqPublisher {
  /** Resolves when the socket has accepted the message (queued for sending). */
  send(frames: readonly [string | Uint8Array, string | Uint8Array]): Promise<void>;
  onEvent: (event: ZmqSocketEvent) => void;
  close(): void;
}

export type ZmqSocketEvent =
  | { type: "connected"; endpoint: string }
  | { type: "disconnected"; endpoint: string }
  | { type: "listening"; endpoint: string }
  | { type: "error"; endpoint: string; error: Error };

export interface ZmqTransport {
  subscribe(endpoints: readonly string[], topics: readonly string[]): Promise<ZmqSubscriber>;
  /** `bind: true` binds the endpoint (tcp://*:9940); false connects to a relay. */
  publish(endpoint: string, bind: boolean): Promise<ZmqPublisher>;
}

export interface Transports {
  amqp: AmqpTransport;
  zmq: ZmqTransport;
}
