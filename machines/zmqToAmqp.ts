// zmq_to_amqp: SUB on the fedmsg endpoints → PublishBuffer (→ spool on disk) →
// confirm-window publisher on `zmq.topic`.
// starting → forwarding ⇄ backpressured → draining → stopped.
import { assign, enqueueActions, fromCallback, setup, type ActorRefFrom, type AnyActorRef } from "xstate";
import type { EnvelopeValidator } from "../schema/convert.ts";
import { PublishBuffer, type BufferLimits, type Outgoing } from "../lib/publish-buffer.ts";
import { BridgeStats } from "../lib/stats.ts";
import type { Logger } from "../lib/log.ts";
import { amqpChannelMachine, type ChannelToOwner } from "./amqpChannel.ts";
import { zmqSocketMachine } from "./zmqSocket.ts";
import type { PublisherParams } from "../actors/publisher.ts";
import { createIntake, type Flow } from "../actors/intake.ts";
import type { SpoolerEvent, SpoolerInput } from "../actors/spooler.ts";

export interface ZmqToAmqpInput {
  name: string;
  /** The connection actor of the broker this bridge publishes to. */
  connectionRef: AnyActorRef;
  broker: string;
  channelNumber: number;
  endpoints: readonly string[];
  topics: readonly string[];
  exchange: string;
  alternateExchange?: string;
  buffer: BufferLimits;
  /** `spool`: what the buffer cannot hold, or holds while the broker is away, goes to disk here. */
  spoolDir?: string;
  /** What to do with a publish the broker refused (403): keep it and retry later, or dead-letter it. */
  onRefused: { policy: "keep"; retryMs: number } | { policy: "dead-letter"; exchange: string };
  /** Publishes awaiting their confirm at once. */
  window: number;
  drainTimeoutMs: number;
  backoff: { baseMs: number; maxMs: number };
  logger: Logger;
  validate?: EnvelopeValidator;
  /** Clock for the `sent-at` header (tests pin it). */
  now?: () => number;
}

export interface ZmqToAmqpContext {
  input: ZmqToAmqpInput;
  id: string;
  buffer: PublishBuffer;
  stats: BridgeStats;
  flow: Flow;
  /** Refused messages held for a later retry (policy keep). */
  held: Outgoing[];
  socket?: ActorRefFrom<typeof zmqSocketMachine>;
  channel?: ActorRefFrom<typeof amqpChannelMachine>;
  spooler?: AnyActorRef;
}

export type ZmqToAmqpEvent = ChannelToOwner | { type: "RETRY_REFUSED" } | { type: "STOP" };

/** RabbitMQ's words when topic (or exchange) authorization refuses a publish. */
const REFUSED = /ACCESS_REFUSED - (?:\w+ )?access to (?:topic '([^']*)' in )?exchange '([^']*)'.*?refused for user '([^']*)'/;

export const zmqToAmqpMachine = setup({
  types: {
    input: {} as ZmqToAmqpInput,
    context: {} as ZmqToAmqpContext,
    events: {} as ZmqToAmqpEvent,
  },
  actors: {
    zmqSocket: zmqSocketMachine,
    channel: amqpChannelMachine,
    spooler: fromCallback<SpoolerEvent, SpoolerInput>(() => () => {}),
  },
  guards: {
    drained: ({ context }) => context.buffer.size === 0,
  },
  actions: {
    // Counters and the flow flag live in plain objects, mutated in place like the data plane.
    countReconnect: ({ context }) => void context.stats.reconnects++,
    flowUp: enqueueActions(({ context, enqueue }) => {
      context.flow.up = true;
      if (context.spooler) enqueue.sendTo(context.spooler, { type: "SPOOL.REPLAY" });
    }),
    flowDown: enqueueActions(({ context, enqueue }) => {
      context.flow.up = false;
      if (context.spooler) enqueue.sendTo(context.spooler, { type: "SPOOL.SAVE" });
    }),
    replayTick: enqueueActions(({ context, enqueue }) => {
      const spool = context.flow.spool;
      if (context.spooler && spool && (spool.pending > 0 || spool.uncommitted)) enqueue.sendTo(context.spooler, { type: "SPOOL.REPLAY" });
    }),
    /** A 403 closed the channel: set the refused messages aside so every other one keeps flowing. */
    setAsideRefused: enqueueActions(({ context, event, enqueue }) => {
      const match = event.type === "CHANNEL.DOWN" && event.error ? REFUSED.exec(event.error) : null;
      if (!match) return;
      const [, topic, exchange, user] = match;
      const refused = context.buffer.extract((m) => (!exchange || m.exchange === exchange) && (topic === undefined || m.routingKey === topic));
      if (refused.length === 0) return;
      const { input, stats, id } = context;
      stats.refused += refused.length;
      const policy = input.onRefused;
      input.logger.limited(
        `${id}:refused:${topic ?? exchange}`,
        "error",
        id,
        `broker refused to let user ${user} publish to exchange ${exchange ?? "?"} with routing key ${topic ?? "(any)"} (403 ACCESS_REFUSED): ${refused.length} message(s) ${policy.policy === "keep" ? `held, retried in ${policy.retryMs} ms` : `sent to ${policy.exchange}`}; grant the topic permission (setup-broker) or change the routing`,
      );
      if (policy.policy === "keep") {
        // One retry timer for everything held: scheduling the same id again would orphan
        // the pending timer (it would still fire, and keep the process alive after stop).
        const timerPending = context.held.length > 0;
        context.held.push(...refused);
        if (!timerPending) enqueue.raise({ type: "RETRY_REFUSED" }, { id: "retry-refused", delay: policy.retryMs });
      } else {
        for (const m of refused) {
          context.buffer.push(
            { ...m, exchange: policy.exchange, properties: { ...m.properties, headers: { ...m.properties.headers, "x-refused-exchange": m.exchange, "x-refused-user": user } } },
            true,
          );
        }
      }
    }),
    retryRefused: ({ context }) => {
      const held = context.held.splice(0);
      for (const m of held) if (!context.buffer.push(m, true)) context.held.push(m);
    },
  },
  delays: {
    drainTimeout: ({ context }) => context.input.drainTimeoutMs,
  },
}).createMachine({
  id: "zmqToAmqp",
  context: ({ input }) => ({
    input,
    id: `zmq_to_amqp:${input.name}`,
    buffer: new PublishBuffer(input.buffer),
    stats: new BridgeStats(),
    flow: { up: false },
    held: [],
  }),
  entry: assign(({ context, spawn }) => {
    const { input, id } = context;
    const params: PublisherParams = {
      actor: id,
      exchange: input.exchange,
      alternateExchange: input.alternateExchange,
      declareExchange: !input.exchange.startsWith("amq."),
      buffer: context.buffer,
      window: input.window,
      stats: context.stats,
      logger: input.logger,
      onConfirmed: (message) => context.stats.latency.observe(((input.now ?? Date.now)() - message.receivedAt) / 1000),
    };
    const channelId = `amqp:${input.broker}:${input.channelNumber}`;
    const intake = createIntake({ id, exchange: input.exchange, buffer: context.buffer, stats: context.stats, flow: context.flow, logger: input.logger, validate: input.validate, now: input.now });
    return {
      // The spooler first: the intake must find the spool from the first message on.
      spooler: input.spoolDir
        ? spawn("spooler", { id: "spooler", input: { id, dir: input.spoolDir, name: id, buffer: context.buffer, flow: context.flow, logger: input.logger } })
        : undefined,
      channel: spawn("channel", {
        id: channelId,
        systemId: channelId,
        input: { connectionRef: input.connectionRef, params, backoff: input.backoff, log: (l, m) => input.logger.log(l, channelId, m) },
      }),
      socket: spawn("zmqSocket", {
        id: `zmq:${input.name}`,
        systemId: `zmq:${input.name}`,
        input: {
          spec: { mode: "sub", endpoints: input.endpoints, topics: input.topics, onFrames: intake },
          log: (l, m) => input.logger.log(l, `zmq:${input.name}`, m),
        },
      }),
    };
  }),
  initial: "starting",
  on: {
    STOP: ".draining",
    "CHANNEL.READY": { target: ".forwarding", actions: "flowUp" },
    "CHANNEL.DOWN": { target: ".backpressured", actions: ["setAsideRefused", "flowDown", "countReconnect"] },
    RETRY_REFUSED: { actions: "retryRefused" },
  },
  states: {
    starting: {
      on: { "CHANNEL.DOWN": { actions: ["setAsideRefused", "flowDown"] } },
    },
    forwarding: {
      on: { "CHANNEL.SATURATED": "backpressured" },
      // Under the spool policy, what waits on disk is fed back as room appears.
      after: { 100: { target: "forwarding", reenter: true, actions: "replayTick" } },
    },
    backpressured: {},
    draining: {
      // Intake stops first; what is buffered gets its confirms, within a bound.
      entry: ({ context }) => context.socket?.send({ type: "STOP" }),
      after: {
        drainTimeout: {
          target: "stopped",
          actions: ({ context }) =>
            context.input.logger.log("error", context.id, `drain timed out with ${context.buffer.size} messages unconfirmed${context.spooler ? " (kept in the spool)" : ""}`),
        },
      },
      on: { STOP: {}, "CHANNEL.READY": { actions: "flowUp" }, "CHANNEL.DOWN": { actions: ["setAsideRefused", "flowDown"] } },
      initial: "waiting",
      states: {
        waiting: {
          always: { guard: "drained", target: "#zmqToAmqp.stopped" },
          after: { 50: { target: "waiting", reenter: true } },
        },
      },
    },
    stopped: {
      type: "final",
      entry: ({ context }) =>
        context.held.length > 0 &&
        context.input.logger.log("error", context.id, `${context.held.length} message(s) refused by the broker (403) were still held at stop and are lost; grant the topic permission`),
    },
  },
});
