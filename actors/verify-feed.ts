// The verifier's AMQP side: a queue bound `#` on both exchanges, as the Python
// tool declares it (amqp_bridge_verify_missing, not durable, auto-delete,
// x-message-ttl 60000); every delivery goes to the verifier and is acked.
import { fromCallback, fromPromise } from "xstate";
import type { ChannelWorkEvent, ChannelWorkInput } from "../machines/amqpChannel.ts";
import type { Logger } from "../lib/log.ts";
import type { VerifierTracker } from "../lib/verifier-tracker.ts";

/** Where both feeds put what they see: the verifier's tracker, directly (O(1), no event per message). */
export interface VerifierSink {
  tracker: VerifierTracker;
  now: () => number;
}

export interface VerifyFeedParams {
  actor: string;
  queue: string;
  exchanges: readonly string[];
  /** Declare arguments per exchange, as the bridge publishing there declares it. */
  exchangeArguments?: Readonly<Record<string, Record<string, unknown>>>;
  sink: VerifierSink;
  logger: Logger;
  declaredQueue?: string;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

export const prepareVerifyFeed = fromPromise<void, ChannelWorkInput>(async ({ input }) => {
  const { channel } = input;
  const params = input.params as VerifyFeedParams;
  await channel.prefetch(1000);
  params.declaredQueue = await channel.queueDeclare(params.queue, { durable: false, autoDelete: true, arguments: { "x-message-ttl": 60_000 } });
  for (const exchange of params.exchanges) {
    if (!exchange.startsWith("amq.")) await channel.exchangeDeclare(exchange, "topic", true, params.exchangeArguments?.[exchange]);
    await channel.queueBind(params.declaredQueue, exchange, "#");
  }
});

export const feedVerifierFromAmqp = fromCallback<ChannelWorkEvent, ChannelWorkInput>(({ input }) => {
  const { channel } = input;
  const params = input.params as VerifyFeedParams;
  let stopped = false;
  let highest = 0;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (!stopped && !channel.closed && highest) channel.ack(highest, true);
    highest = 0;
  };
  void channel
    .consume(params.declaredQueue!, (delivery) => {
      let body: unknown;
      try {
        body = JSON.parse(decoder.decode(delivery.body));
      } catch {
        body = undefined; // compared as-is: a non-JSON body shows up as a mismatch
      }
      const id = delivery.properties.messageId;
      if (id) params.sink.tracker.seenAmqp(id, delivery.routingKey, body, params.sink.now());
      else params.logger.limited(`${params.actor}:noid`, "warning", params.actor, `AMQP message on ${delivery.routingKey} has no message_id: cannot be matched`);
      highest = delivery.deliveryTag;
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    })
    .catch((error: Error) => params.logger.log("error", params.actor, `cannot consume from ${params.declaredQueue}: ${error.message}`));
  return () => {
    flush();
    stopped = true;
  };
});

/** The verifier's ZeroMQ side: each fedmsg envelope is recorded by msg_id. */
export function zmqFeed(sink: VerifierSink, logger: Logger, actor: string) {
  return (frames: readonly Uint8Array[]): boolean => {
    try {
      if (frames.length !== 2) throw new Error(`${frames.length} frames`);
      const envelope = JSON.parse(decoder.decode(frames[1]!)) as { msg_id?: unknown; msg?: unknown };
      if (typeof envelope.msg_id !== "string") throw new Error("no msg_id");
      sink.tracker.seenZmq(envelope.msg_id, decoder.decode(frames[0]!), envelope.msg ?? {}, sink.now());
    } catch (error) {
      logger.limited(`${actor}:zmq-bad`, "warning", actor, `ZeroMQ message cannot be matched: ${(error as Error).message}`);
    }
    return true;
  };
}
