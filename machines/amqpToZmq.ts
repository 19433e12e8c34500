// amqp_to_zmq: a queue bound to `amq.topic` → fedmsg envelopes on a ZeroMQ PUB.
// starting → forwarding ⇄ backpressured → draining → stopped.
import { assign, setup, type ActorRefFrom, type AnyActorRef } from "xstate";
import { BridgeStats } from "../lib/stats.ts";
import type { Logger } from "../lib/log.ts";
import { amqpChannelMachine, type ChannelToOwner } from "./amqpChannel.ts";
import { zmqSocketMachine } from "./zmqSocket.ts";
import type { ForwarderParams, ForwardLink } from "../actors/forwarder.ts";

export interface AmqpToZmqInput {
  name: string;
  connectionRef: AnyActorRef;
  broker: string;
  channelNumber: number;
  publishEndpoint: string;
  /** Connect to a relay instead of binding (`--remote-publish`). */
  remotePublish: boolean;
  exchange: string;
  queue: string;
  bindingKeys: readonly string[];
  prefetch: number;
  queueArguments?: Record<string, unknown>;
  drainTimeoutMs: number;
  backoff: { baseMs: number; maxMs: number };
  logger: Logger;
  encode?: ForwarderParams["encode"];
}

export interface AmqpToZmqContext {
  input: AmqpToZmqInput;
  id: string;
  stats: BridgeStats;
  link: ForwardLink;
  socket?: ActorRefFrom<typeof zmqSocketMachine>;
  channel?: ActorRefFrom<typeof amqpChannelMachine>;
}

export type AmqpToZmqEvent = ChannelToOwner | { type: "PUB.READY" } | { type: "STOP" };

export const amqpToZmqMachine = setup({
  types: {
    input: {} as AmqpToZmqInput,
    context: {} as AmqpToZmqContext,
    events: {} as AmqpToZmqEvent,
  },
  actors: { zmqSocket: zmqSocketMachine, channel: amqpChannelMachine },
  guards: {
    drained: ({ context }) => context.link.pending === 0,
  },
  actions: {
    // A stats counter, not context: bumped in place like the data-plane counters.
    countReconnect: ({ context }) => void context.stats.reconnects++,
  },
  delays: {
    drainTimeout: ({ context }) => context.input.drainTimeoutMs,
  },
}).createMachine({
  id: "amqpToZmq",
  context: ({ input }) => ({ input, id: `amqp_to_zmq:${input.name}`, stats: new BridgeStats(), link: { pending: 0, counter: 0 } }),
  entry: assign(({ context, spawn, self }) => {
    const { input, link } = context;
    const socketId = `zmq:${input.name}`;
    return {
      socket: spawn("zmqSocket", {
        id: socketId,
        systemId: socketId,
        input: {
          spec: {
            mode: "pub",
            endpoint: input.publishEndpoint,
            bind: !input.remotePublish,
            onPublisher: (publisher) => {
              link.publisher = publisher;
              if (publisher) self.send({ type: "PUB.READY" });
            },
          },
          log: (l, m) => input.logger.log(l, socketId, m),
        },
      }),
    };
  }),
  initial: "starting",
  on: { STOP: ".draining" },
  states: {
    starting: {
      on: {
        // Consuming starts only once there is a socket to hand deliveries to.
        "PUB.READY": {
          target: "backpressured",
          actions: assign({
            channel: ({ context, spawn }) => {
              const { input } = context;
              const channelId = `amqp:${input.broker}:${input.channelNumber}`;
              const params: ForwarderParams = {
                actor: context.id,
                exchange: input.exchange,
                queue: input.queue,
                bindingKeys: input.bindingKeys,
                prefetch: input.prefetch,
                queueArguments: input.queueArguments,
                link: context.link,
                stats: context.stats,
                logger: input.logger,
                encode: input.encode,
              };
              return spawn("channel", {
                id: channelId,
                systemId: channelId,
                input: { connectionRef: input.connectionRef, params, backoff: input.backoff, log: (l, m) => input.logger.log(l, channelId, m) },
              });
            },
          }),
        },
      },
    },
    forwarding: {
      on: { "CHANNEL.DOWN": { target: "backpressured", actions: "countReconnect" }, "CHANNEL.SATURATED": "backpressured" },
    },
    backpressured: {
      on: { "CHANNEL.READY": "forwarding", "CHANNEL.DOWN": { actions: "countReconnect" } },
    },
    draining: {
      // Stop consuming; deliveries already on the socket get their acks, within a bound.
      entry: ({ context }) => context.channel?.send({ type: "STOP" }),
      after: {
        drainTimeout: {
          target: "stopped",
          actions: ({ context }) => context.input.logger.log("error", context.id, `drain timed out with ${context.link.pending} deliveries unacked`),
        },
      },
      on: { STOP: {} },
      initial: "waiting",
      states: {
        waiting: {
          always: { guard: "drained", target: "#amqpToZmq.stopped" },
          after: { 50: { target: "waiting", reenter: true } },
        },
      },
    },
    stopped: { type: "final", entry: ({ context }) => context.socket?.send({ type: "STOP" }) },
  },
});
