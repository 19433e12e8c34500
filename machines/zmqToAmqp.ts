// zmq_to_amqp: SUB on the fedmsg endpoints → PublishBuffer → confirm-window
// publisher on `zmq.topic`. starting → forwarding ⇄ backpressured → draining → stopped.
import { assign, setup, type ActorRefFrom, type AnyActorRef } from "xstate";
import { zmqToAmqp } from "../schema/convert.ts";
import type { ZmqFrames } from "../actors/transport.ts";
import { PublishBuffer, type BufferLimits } from "../lib/publish-buffer.ts";
import { BridgeStats } from "../lib/stats.ts";
import type { Logger } from "../lib/log.ts";
import { amqpChannelMachine, type ChannelToOwner } from "./amqpChannel.ts";
import { zmqSocketMachine } from "./zmqSocket.ts";
import type { PublisherParams } from "../actors/publisher.ts";

export interface ZmqToAmqpInput {
  name: string;
  /** The connection actor of the broker this bridge publishes to. */
  connectionRef: AnyActorRef;
  broker: string;
  channelNumber: number;
  endpoints: readonly string[];
  topics: readonly string[];
  exchange: string;
  buffer: BufferLimits;
  /** Publishes awaiting their confirm at once. */
  window: number;
  drainTimeoutMs: number;
  backoff: { baseMs: number; maxMs: number };
  logger: Logger;
  validate?: Parameters<typeof zmqToAmqp>[1]["validate"];
  /** Clock for the `sent-at` header (tests pin it). */
  now?: () => number;
}

export interface ZmqToAmqpContext {
  input: ZmqToAmqpInput;
  id: string;
  buffer: PublishBuffer;
  stats: BridgeStats;
  socket?: ActorRefFrom<typeof zmqSocketMachine>;
  channel?: ActorRefFrom<typeof amqpChannelMachine>;
}

export type ZmqToAmqpEvent = ChannelToOwner | { type: "STOP" };

/** Converts and buffers one incoming message; false when the buffer overflowed. */
function createIntake(ctx: { id: string; input: ZmqToAmqpInput; buffer: PublishBuffer; stats: BridgeStats }) {
  const { id, input, buffer, stats } = ctx;
  const now = input.now ?? Date.now;
  return (frames: ZmqFrames): boolean => {
    stats.received++;
    const result = zmqToAmqp(frames, { now: new Date(now()), exchange: input.exchange, validate: input.validate });
    if (!result.ok) {
      stats.drop(result.reason);
      input.logger.limited(`${id}:drop:${result.reason}`, "warning", id, `dropped (${result.reason}): ${result.detail}`);
      return true;
    }
    const accepted = buffer.push({
      exchange: result.exchange,
      routingKey: result.routingKey,
      body: result.body,
      properties: result.properties,
      receivedAt: now(),
    });
    if (!accepted) {
      stats.drop("overflow");
      input.logger.limited(`${id}:overflow`, "error", id, `buffer full (${buffer.size} messages, ${buffer.bytes} bytes): dropped message ${result.messageId}`);
    }
    return accepted;
  };
}

export const zmqToAmqpMachine = setup({
  types: {
    input: {} as ZmqToAmqpInput,
    context: {} as ZmqToAmqpContext,
    events: {} as ZmqToAmqpEvent,
  },
  actors: { zmqSocket: zmqSocketMachine, channel: amqpChannelMachine },
  guards: {
    drained: ({ context }) => context.buffer.size === 0,
  },
  actions: {
    // A stats counter, not context: bumped in place like the data-plane counters.
    countReconnect: ({ context }) => void context.stats.reconnects++,
  },
  delays: {
    drainTimeout: ({ context }) => context.input.drainTimeoutMs,
  },
}).createMachine({
  id: "zmqToAmqp",
  context: ({ input }) => {
    const id = `zmq_to_amqp:${input.name}`;
    return { input, id, buffer: new PublishBuffer(input.buffer), stats: new BridgeStats() };
  },
  entry: assign(({ context, spawn }) => {
    const { input, id } = context;
    const log = (level: "info" | "warning" | "error", message: string) => input.logger.log(level, id, message);
    const params: PublisherParams = {
      actor: id,
      exchange: input.exchange,
      declareExchange: !input.exchange.startsWith("amq."),
      buffer: context.buffer,
      window: input.window,
      stats: context.stats,
      logger: input.logger,
    };
    const channelId = `amqp:${input.broker}:${input.channelNumber}`;
    return {
      channel: spawn("channel", {
        id: channelId,
        systemId: channelId,
        input: { connectionRef: input.connectionRef, params, backoff: input.backoff, log: (l, m) => input.logger.log(l, channelId, m) },
      }),
      socket: spawn("zmqSocket", {
        id: `zmq:${input.name}`,
        systemId: `zmq:${input.name}`,
        input: {
          spec: { mode: "sub", endpoints: input.endpoints, topics: input.topics, onFrames: createIntake(context) },
          log: (l, m) => input.logger.log(l, `zmq:${input.name}`, m),
        },
      }),
    };
  }),
  initial: "starting",
  on: { STOP: ".draining" },
  states: {
    starting: {
      on: { "CHANNEL.READY": "forwarding" },
    },
    forwarding: {
      on: { "CHANNEL.SATURATED": "backpressured", "CHANNEL.DOWN": { target: "backpressured", actions: "countReconnect" } },
    },
    backpressured: {
      on: { "CHANNEL.READY": "forwarding", "CHANNEL.DOWN": { actions: "countReconnect" } },
    },
    draining: {
      // Intake stops first; what is buffered gets its confirms, within a bound.
      entry: ({ context }) => context.socket?.send({ type: "STOP" }),
      after: {
        drainTimeout: {
          target: "stopped",
          actions: ({ context }) =>
            context.input.logger.log("error", context.id, `drain timed out with ${context.buffer.size} messages unconfirmed`),
        },
      },
      on: { STOP: {} },
      initial: "waiting",
      states: {
        waiting: {
          always: { guard: "drained", target: "#zmqToAmqp.stopped" },
          after: { 50: { target: "waiting", reenter: true } },
        },
      },
    },
    stopped: { type: "final" },
  },
});
