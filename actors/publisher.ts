// The confirm-window publisher that runs on zmq_to_amqp's channel: takes from the
// PublishBuffer while fewer than `window` publishes await their confirm, and
// gives every message back to the buffer when the channel dies unconfirmed.
import { fromCallback, fromPromise } from "xstate";
import type { ChannelWorkEvent, ChannelWorkInput } from "../machines/amqpChannel.ts";
import type { PublishBuffer, Outgoing } from "../lib/publish-buffer.ts";
import type { BridgeStats } from "../lib/stats.ts";
import type { Logger } from "../lib/log.ts";

export interface PublisherParams {
  actor: string;
  exchange: string;
  /** Declare the exchange as a durable topic exchange (zmq.topic); amq.* exist already. */
  declareExchange: boolean;
  /** Where unroutable messages go instead of being returned (the exchange's alternate-exchange). */
  alternateExchange?: string;
  buffer: PublishBuffer;
  window: number;
  stats: BridgeStats;
  logger: Logger;
  /** Called with each confirmed message (latency metrics). */
  onConfirmed?: (message: Outgoing) => void;
}

export const preparePublisher = fromPromise<void, ChannelWorkInput>(async ({ input }) => {
  const params = input.params as PublisherParams;
  if (params.alternateExchange) await input.channel.exchangeDeclare(params.alternateExchange, "fanout", true);
  if (params.declareExchange) {
    const args = params.alternateExchange ? { "alternate-exchange": params.alternateExchange } : undefined;
    await input.channel.exchangeDeclare(params.exchange, "topic", true, args);
  }
  await input.channel.confirmSelect();
});

export const publishPump = fromCallback<ChannelWorkEvent, ChannelWorkInput>(({ input, sendBack, receive }) => {
  const { channel } = input;
  const { buffer, window, stats, logger, actor, onConfirmed } = input.params as PublisherParams;
  const mine = new Set<Outgoing>();
  let stopped = false;
  let paused = false;
  let saturated = false;

  channel.onReturn = (returned) => {
    stats.returned++;
    logger.limited(`${actor}:return`, "warning", actor, `unroutable: no queue is bound for routing key ${returned.routingKey} on ${returned.exchange} (${returned.replyCode} ${returned.replyText}); message ${returned.properties.messageId} was returned by the broker`);
  };

  const fill = () => {
    while (!paused && mine.size < window) {
      const message = buffer.take();
      if (!message) break;
      mine.add(message);
      channel.publish(message.exchange, message.routingKey, message.body, message.properties, true).then(
        () => {
          if (stopped) return;
          mine.delete(message);
          buffer.confirm(message);
          stats.forwarded++;
          onConfirmed?.(message);
          fill();
        },
        (error: Error) => {
          // A closed channel rejects everything unconfirmed: cleanup requeues it.
          if (stopped || channel.closed) return;
          mine.delete(message);
          buffer.requeue([message]);
          stats.duplicates++;
          logger.limited(`${actor}:nack`, "warning", actor, `broker nacked message ${message.properties.messageId}: ${error.message}; retrying after a backoff`);
          if (!paused) {
            paused = true;
            sendBack({ type: "RETRY_LATER" });
          }
        },
      );
    }
    // Hysteresis, so a full window does not flip state on every confirm.
    if (!saturated && mine.size >= window) {
      saturated = true;
      sendBack({ type: "SATURATED" });
    } else if (saturated && mine.size <= window / 2) {
      saturated = false;
      sendBack({ type: "UNSATURATED" });
    }
  };

  receive((event) => {
    paused = event.type === "PAUSE";
    if (!paused) fill();
  });
  buffer.onData = fill;
  fill();

  return () => {
    stopped = true;
    buffer.onData = () => {};
    channel.onReturn = () => {};
    stats.duplicates += buffer.requeue(mine);
  };
});
