// The consumer that runs on amqp_to_zmq's channel: each delivery becomes a fedmsg
// envelope on the PUB socket and is acked only once the socket took it. Acks are
// coalesced into `multiple` acks, see ACK_DELAY_MS.
import { fromCallback, fromPromise } from "xstate";
import { amqpToZmq } from "../schema/convert.ts";
import type { ChannelWorkEvent, ChannelWorkInput } from "../machines/amqpChannel.ts";
import type { ZmqPublisher } from "./transport.ts";
import type { BridgeStats } from "../lib/stats.ts";
import type { Logger } from "../lib/log.ts";

/** Shared between the PUB socket actor and the consumer. */
export interface ForwardLink {
  publisher?: ZmqPublisher;
  /** Deliveries handed to the socket but not yet acked. */
  pending: number;
  /** envelope `i`: a per-bridge counter, as fedmsg publishers keep. */
  counter: number;
}

export interface ForwarderParams {
  actor: string;
  exchange: string;
  /** "" for a server-named exclusive queue (fedora-messaging's default). */
  queue: string;
  bindingKeys: readonly string[];
  prefetch: number;
  /** Extra queue arguments (x-dead-letter-exchange …). */
  queueArguments?: Record<string, unknown>;
  link: ForwardLink;
  stats: BridgeStats;
  logger: Logger;
  /** Replaces the body frame, e.g. with a signed envelope. */
  encode?: (envelope: Record<string, unknown>) => string;
  now?: () => number;
  /** Set by prepare: the queue actually consumed. */
  declaredQueue?: string;
}

/**
 * One `multiple` ack covers every delivery sent so far; it goes out when a
 * quarter of the prefetch window awaits it, or this long after the first
 * delivery it covers. Fewer acks cost the broker less (each one updates the
 * index of a queue of persistent messages), and the window never runs dry.
 */
const ACK_DELAY_MS = 5;

export const prepareForwarder = fromPromise<void, ChannelWorkInput>(async ({ input }) => {
  const { channel } = input;
  const params = input.params as ForwarderParams;
  await channel.prefetch(params.prefetch);
  const named = params.queue !== "";
  params.declaredQueue = await channel.queueDeclare(
    params.queue,
    named ? { durable: true, arguments: params.queueArguments } : { exclusive: true, autoDelete: true, arguments: params.queueArguments },
  );
  for (const key of params.bindingKeys) await channel.queueBind(params.declaredQueue, params.exchange, key);
});

export const forwardDeliveries = fromCallback<ChannelWorkEvent, ChannelWorkInput>(({ input }) => {
  const { channel } = input;
  const params = input.params as ForwarderParams;
  const { link, stats, logger, actor } = params;
  const now = params.now ?? Date.now;
  let stopped = false;
  const ackEvery = Math.max(1, Math.floor(params.prefetch / 4));
  let highestSent = 0;
  let unacked = 0;
  let flushTimer: ReturnType<typeof setTimeout> | undefined;

  const flush = () => {
    clearTimeout(flushTimer);
    flushTimer = undefined;
    // Never ack on another channel: a dead channel's tags mean nothing elsewhere.
    if (stopped || channel.closed || highestSent === 0) return;
    channel.ack(highestSent, true);
    highestSent = 0;
    unacked = 0;
  };

  void channel
    .consume(params.declaredQueue!, (delivery) => {
      if (stopped) return;
      const receivedAt = now();
      stats.received++;
      if (delivery.redelivered) stats.duplicates++;
      const result = amqpToZmq(delivery, { now: new Date(now()), counter: ++link.counter });
      if (!result.ok) {
        // Rejected without requeue: dead-lettered where configured, never hot-looped.
        channel.reject(delivery.deliveryTag, false);
        stats.drop(result.reason);
        logger.limited(`${actor}:reject:${result.reason}`, "warning", actor, `rejected (${result.reason}): ${result.detail}`);
        return;
      }
      const publisher = link.publisher;
      if (!publisher) {
        channel.reject(delivery.deliveryTag, true);
        return;
      }
      const body = params.encode ? params.encode(result.envelope as unknown as Record<string, unknown>) : result.frames[1];
      link.pending++;
      publisher.send([result.frames[0], body]).then(
        () => {
          link.pending--;
          stats.forwarded++;
          stats.latency.observe((now() - receivedAt) / 1000);
          // Sends complete in delivery order, so one multiple-ack covers them all.
          highestSent = delivery.deliveryTag;
          if (++unacked >= ackEvery) flush();
          else flushTimer ??= setTimeout(flush, ACK_DELAY_MS);
        },
        (error: Error) => {
          link.pending--;
          if (!stopped && !channel.closed) channel.reject(delivery.deliveryTag, true);
          logger.limited(`${actor}:send`, "error", actor, `ZeroMQ send failed: ${error.message}; message requeued`);
        },
      );
    })
    .catch((error: Error) => logger.log("error", actor, `cannot consume from ${params.declaredQueue}: ${error.message}`));

  return () => {
    flush();
    stopped = true;
  };
});
