// The AMQP transport over @cloudamqp/amqp-client's low-level AMQPClient. It only
// adapts: reconnection, retries and policy live in the machines, never here.
import { readFileSync } from "node:fs";
import { AMQPClient, type AMQPChannel, type AMQPMessage, type AMQPProperties } from "@cloudamqp/amqp-client";
import type {
  AmqpChannel,
  AmqpConnectOptions,
  AmqpConnection,
  AmqpDelivery,
  AmqpProperties,
  AmqpReturned,
  AmqpTransport,
  QueueOptions,
} from "./transport.ts";

const ignore = () => {};

function toClientProperties(p: AmqpProperties): AMQPProperties {
  return {
    contentType: p.contentType,
    contentEncoding: p.contentEncoding,
    deliveryMode: p.deliveryMode,
    messageId: p.messageId,
    priority: p.priority,
    timestamp: p.timestamp,
    headers: p.headers as AMQPProperties["headers"],
  };
}

function fromClientProperties(p: AMQPProperties): AmqpProperties {
  return {
    contentType: p.contentType,
    contentEncoding: p.contentEncoding,
    deliveryMode: p.deliveryMode,
    messageId: p.messageId,
    priority: p.priority,
    timestamp: p.timestamp,
    headers: p.headers as Record<string, unknown> | undefined,
  };
}

class ClientChannel implements AmqpChannel {
  onReturn: (returned: AmqpReturned) => void = ignore;
  onClose: (reason?: Error) => void = ignore;
  private notifiedClose = false;

  constructor(
    private readonly ch: AMQPChannel,
    private readonly forget: (ch: ClientChannel) => void,
  ) {
    // The client reports a broker-initiated close here; a lost connection is
    // forwarded by ClientConnection, a close of ours by close().
    ch.onerror = (reason) => this.closedBy(new Error(reason));
    ch.onReturn = (m: AMQPMessage) =>
      this.onReturn({
        replyCode: m.replyCode ?? 0,
        replyText: m.replyText ?? "",
        exchange: m.exchange,
        routingKey: m.routingKey,
        properties: fromClientProperties(m.properties),
      });
  }

  get id() {
    return this.ch.id;
  }
  get closed() {
    return this.ch.closed;
  }

  closedBy(reason?: Error) {
    if (this.notifiedClose) return;
    this.notifiedClose = true;
    this.forget(this);
    this.onClose(reason);
  }

  confirmSelect() {
    return this.ch.confirmSelect();
  }
  prefetch(count: number) {
    return this.ch.basicQos(count);
  }
  async exchangeDeclare(name: string, type: string, durable: boolean, args?: Record<string, unknown>) {
    await this.ch.exchangeDeclare(name, type, { durable }, args as Record<string, string>);
  }
  async queueDeclare(name: string, o: QueueOptions) {
    const ok = await this.ch.queueDeclare(
      name,
      { durable: o.durable ?? false, exclusive: o.exclusive ?? false, autoDelete: o.autoDelete ?? false },
      o.arguments as Record<string, string | number | boolean>,
    );
    return ok.name;
  }
  async queueBind(queue: string, exchange: string, bindingKey: string) {
    await this.ch.queueBind(queue, exchange, bindingKey);
  }
  async queueDelete(name: string) {
    await this.ch.queueDelete(name);
  }
  async exchangeDelete(name: string) {
    await this.ch.exchangeDelete(name);
  }
  async publish(exchange: string, routingKey: string, body: Uint8Array, properties: AmqpProperties, mandatory: boolean) {
    await this.ch.basicPublish(exchange, routingKey, body, toClientProperties(properties), mandatory);
  }
  async consume(queue: string, onDelivery: (d: AmqpDelivery) => void) {
    const consumer = await this.ch.basicConsume(queue, { noAck: false }, (m: AMQPMessage) => {
      onDelivery({
        deliveryTag: m.deliveryTag,
        exchange: m.exchange,
        routingKey: m.routingKey,
        redelivered: m.redelivered,
        body: (m.body as Uint8Array | null) ?? new Uint8Array(0),
        properties: fromClientProperties(m.properties),
      });
    });
    return consumer.tag;
  }
  ack(deliveryTag: number, multiple: boolean) {
    this.ch.basicAck(deliveryTag, multiple).catch(ignore);
  }
  reject(deliveryTag: number, requeue: boolean) {
    this.ch.basicReject(deliveryTag, requeue).catch(ignore);
  }
  async close() {
    if (!this.ch.closed) await this.ch.close().catch(ignore);
    this.closedBy();
  }
}

class ClientConnection implements AmqpConnection {
  onClose: (reason?: Error) => void = ignore;
  onBlocked: (reason: string) => void = ignore;
  onUnblocked: () => void = ignore;
  private readonly channels = new Set<ClientChannel>();
  private notifiedClose = false;

  constructor(private readonly client: AMQPClient) {
    client.onerror = ignore; // surfaced through ondisconnect and channel closes instead
    client.ondisconnect = (error) => this.closedBy(error ?? new Error("connection lost"));
    client.onblocked = (reason) => this.onBlocked(reason);
    client.onunblocked = () => this.onUnblocked();
  }

  get closed() {
    return this.client.closed;
  }

  private closedBy(reason?: Error) {
    for (const ch of [...this.channels]) ch.closedBy(reason);
    if (this.notifiedClose) return;
    this.notifiedClose = true;
    this.onClose(reason);
  }

  async openChannel(): Promise<AmqpChannel> {
    const ch = new ClientChannel(await this.client.channel(), (c) => this.channels.delete(c));
    this.channels.add(ch);
    return ch;
  }

  async close() {
    if (!this.client.closed) await this.client.close().catch(ignore);
    this.closedBy();
  }
}

export const amqpTransport: AmqpTransport = {
  async connect(url: string, options: AmqpConnectOptions): Promise<AmqpConnection> {
    const u = new URL(url);
    if (options.heartbeatSeconds !== undefined) u.searchParams.set("heartbeat", String(options.heartbeatSeconds));
    if (options.name) u.searchParams.set("name", options.name);
    if (options.tls?.insecure) u.searchParams.set("insecure", "");
    const tls = options.tls;
    const client = new AMQPClient(
      u.toString(),
      tls && u.protocol === "amqps:"
        ? {
            ca: tls.caCert ? readFileSync(tls.caCert) : undefined,
            cert: tls.certFile ? readFileSync(tls.certFile) : undefined,
            key: tls.keyFile ? readFileSync(tls.keyFile) : undefined,
          }
        : undefined,
      null,
    );
    await client.connect();
    return new ClientConnection(client);
  },
};
