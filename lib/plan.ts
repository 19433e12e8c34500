// From a validated manifest to the root actor's plan: which child each entry
// becomes, under which actor id, with what input. Pure: no I/O happens here.
import type { AnyActorRef } from "xstate";
import type { Manifest } from "../schema/manifest.ts";
import type { ChildPlan, SystemInput } from "../machines/system.ts";
import type { ZmqToAmqpInput } from "../machines/zmqToAmqp.ts";
import type { AmqpToZmqInput } from "../machines/amqpToZmq.ts";
import type { VerifyServiceInput } from "../machines/verifyService.ts";
import type { AmqpConnectionInput } from "../machines/amqpConnection.ts";
import type { SamplePublisherInput } from "../actors/samples.ts";
import type { Logger } from "./log.ts";

export interface PlanOptions {
  logger: Logger;
  /** Extra hooks per bridge (signature validation, signing), keyed by bridge name. */
  validate?: Record<string, ZmqToAmqpInput["validate"]>;
  encode?: Record<string, AmqpToZmqInput["encode"]>;
  report?: Record<string, VerifyServiceInput["verifier"]["report"]>;
  now?: () => number;
  random?: () => number;
}

const RECONNECT = { baseMs: 200, maxMs: 10_000 };

export function planSystem(manifest: Manifest, options: PlanOptions): SystemInput {
  const { logger } = options;
  const channelNumbers = new Map<string, number>();
  const nextChannel = (broker: string) => {
    const n = (channelNumbers.get(broker) ?? 0) + 1;
    channelNumbers.set(broker, n);
    return n;
  };
  const connectionOf = (connections: Record<string, AnyActorRef>, broker: string) => connections[`amqp:${broker}`]!;
  const drainTimeoutMs = manifest.shutdown.drain_timeout_ms;

  const connections: ChildPlan[] = Object.entries(manifest.brokers).map(([name, broker]) => ({
    id: `amqp:${name}`,
    src: "amqpConnection",
    input: (): AmqpConnectionInput => ({
      broker: name,
      url: broker.url,
      options: {
        name: `fedmsg-migration-tools ${name}`,
        heartbeatSeconds: broker.heartbeat,
        tls: broker.tls
          ? { caCert: broker.tls.ca_cert ?? undefined, certFile: broker.tls.certfile ?? undefined, keyFile: broker.tls.keyfile ?? undefined, insecure: broker.tls.insecure }
          : undefined,
      },
      maxAttempts: broker.max_attempts ?? Infinity,
      backoff: RECONNECT,
      random: options.random,
      log: (level, message) => logger.log(level, `amqp:${name}`, message),
    }),
  }));

  const children: ChildPlan[] = [];
  for (const bridge of manifest.bridges) {
    if (bridge.kind === "zmq_to_amqp") {
      const channelNumber = nextChannel(bridge.amqp.broker);
      children.push({
        id: `zmq_to_amqp:${bridge.name}`,
        src: "zmqToAmqp",
        input: (c): ZmqToAmqpInput => ({
          name: bridge.name,
          connectionRef: connectionOf(c, bridge.amqp.broker),
          broker: bridge.amqp.broker,
          channelNumber,
          endpoints: bridge.zmq.endpoints,
          topics: bridge.zmq.topics,
          exchange: bridge.amqp.exchange,
          alternateExchange: bridge.amqp.alternate_exchange ?? undefined,
          buffer: { maxMessages: bridge.buffer.max_messages, maxBytes: bridge.buffer.max_bytes },
          spoolDir: bridge.buffer.overflow === "spool" ? (bridge.buffer.spool_dir ?? undefined) : undefined,
          onRefused:
            bridge.amqp.on_refused === "dead-letter" && bridge.amqp.dead_letter_exchange
              ? { policy: "dead-letter", exchange: bridge.amqp.dead_letter_exchange }
              : { policy: "keep", retryMs: manifest.supervision.max_delay_ms },
          window: bridge.window,
          drainTimeoutMs,
          backoff: RECONNECT,
          logger,
          validate: options.validate?.[bridge.name],
          now: options.now,
        }),
      });
    } else {
      const channelNumber = nextChannel(bridge.amqp.broker);
      children.push({
        id: `amqp_to_zmq:${bridge.name}`,
        src: "amqpToZmq",
        input: (c): AmqpToZmqInput => ({
          name: bridge.name,
          connectionRef: connectionOf(c, bridge.amqp.broker),
          broker: bridge.amqp.broker,
          channelNumber,
          publishEndpoint: bridge.zmq.publish_endpoint,
          remotePublish: bridge.zmq.remote_publish,
          exchange: bridge.amqp.exchange,
          queue: bridge.amqp.queue,
          bindingKeys: bridge.amqp.binding_keys,
          prefetch: bridge.amqp.prefetch,
          queueArguments: bridge.amqp.dead_letter_exchange ? { "x-dead-letter-exchange": bridge.amqp.dead_letter_exchange } : undefined,
          drainTimeoutMs,
          backoff: RECONNECT,
          logger,
          encode: options.encode?.[bridge.name],
        }),
      });
    }
  }
  for (const verifier of manifest.verifiers) {
    const channelNumber = nextChannel(verifier.amqp.broker);
    // The verifier declares zmq.topic too (it may start first): with the same
    // alternate-exchange as a bridge of this manifest, or the broker refuses it.
    const exchangeArguments: Record<string, Record<string, unknown>> = {};
    for (const bridge of manifest.bridges) {
      if (bridge.kind === "zmq_to_amqp" && bridge.amqp.broker === verifier.amqp.broker && bridge.amqp.alternate_exchange && verifier.amqp.exchanges.includes(bridge.amqp.exchange)) {
        exchangeArguments[bridge.amqp.exchange] = { "alternate-exchange": bridge.amqp.alternate_exchange };
      }
    }
    children.push({
      id: `verify:${verifier.name}`,
      src: "verifier",
      input: (c): VerifyServiceInput => ({
        name: verifier.name,
        connectionRef: connectionOf(c, verifier.amqp.broker),
        broker: verifier.amqp.broker,
        channelNumber,
        endpoints: verifier.zmq.endpoints,
        exchanges: verifier.amqp.exchanges,
        exchangeArguments,
        queue: verifier.amqp.queue,
        verifier: {
          windowMs: verifier.window * 1000,
          matchIntervalMs: verifier.match_interval * 1000,
          checkIntervalMs: verifier.check_interval * 1000,
          maxPending: verifier.max_pending,
          report: options.report?.[verifier.name],
          now: options.now,
        },
        backoff: RECONNECT,
        logger,
      }),
    });
  }
  for (const publisher of manifest.publishers) {
    const id = `publish:${publisher.name}`;
    children.push({
      id,
      src: "publisher",
      input: (c): SamplePublisherInput =>
        publisher.kind === "fedmsg_sample"
          ? { kind: "fedmsg_sample", id, endpoint: publisher.endpoint, rate: publisher.rate, logger }
          : { kind: "amqp_sample", id, connectionRef: connectionOf(c, publisher.broker), exchange: publisher.exchange, rate: publisher.rate, logger },
    });
  }

  const s = manifest.supervision;
  return {
    connections,
    children,
    supervision: { baseDelayMs: s.base_delay_ms, maxDelayMs: s.max_delay_ms, maxRestarts: s.max_restarts, windowMs: s.window_s * 1000 },
    drainTimeoutMs,
    log: (level, actor, message) => logger.log(level, actor, message),
    now: options.now,
    random: options.random,
  };
}
