// verify_missing as one actor: the verifier core fed by a ZeroMQ SUB and an AMQP
// queue bound to both exchanges. collecting → draining → stopped.
import { assign, setup, type ActorRefFrom, type AnyActorRef } from "xstate";
import type { Logger } from "../lib/log.ts";
import { amqpChannelMachine } from "./amqpChannel.ts";
import { zmqSocketMachine } from "./zmqSocket.ts";
import { verifierMachine, type VerifierInput } from "./verifier.ts";
import { zmqFeed, type VerifyFeedParams } from "../actors/verify-feed.ts";
import { VerifierTracker, type VerifierSummary } from "../lib/verifier-tracker.ts";

export interface VerifyServiceInput {
  name: string;
  connectionRef: AnyActorRef;
  broker: string;
  channelNumber: number;
  endpoints: readonly string[];
  exchanges: readonly string[];
  /** Arguments to declare an exchange with, as its bridge declares it (a different set is a 406). */
  exchangeArguments?: Readonly<Record<string, Record<string, unknown>>>;
  queue: string;
  verifier: Omit<VerifierInput, "name" | "log">;
  backoff: { baseMs: number; maxMs: number };
  logger: Logger;
}

export interface VerifyServiceContext {
  input: VerifyServiceInput;
  id: string;
  core?: ActorRefFrom<typeof verifierMachine>;
  socket?: ActorRefFrom<typeof zmqSocketMachine>;
  channel?: ActorRefFrom<typeof amqpChannelMachine>;
  /** The core's last summary, kept for the summary line once it has stopped. */
  finalSummary?: VerifierSummary;
}

export const verifyServiceMachine = setup({
  types: {
    input: {} as VerifyServiceInput,
    context: {} as VerifyServiceContext,
    events: {} as { type: "STOP" } | { type: "xstate.done.actor.core"; output: VerifierSummary } | { type: "CHANNEL.READY" } | { type: "CHANNEL.SATURATED" } | { type: "CHANNEL.DOWN"; error?: string },
  },
  actors: { core: verifierMachine, zmqSocket: zmqSocketMachine, channel: amqpChannelMachine },
}).createMachine({
  id: "verifyService",
  context: ({ input }) => ({ input, id: `verify:${input.name}` }),
  entry: assign(({ context, spawn }) => {
    const { input, id } = context;
    // One tracker, fed directly by both sides; the core machine runs its timers and reports.
    const v = input.verifier;
    const sink = { tracker: new VerifierTracker({ windowMs: v.windowMs, maxPending: v.maxPending, maxRecent: v.maxRecent }), now: v.now ?? Date.now };
    const params: VerifyFeedParams = { actor: id, queue: input.queue, exchanges: input.exchanges, exchangeArguments: input.exchangeArguments, sink, logger: input.logger };
    const channelId = `amqp:${input.broker}:${input.channelNumber}`;
    const socketId = `zmq:verify-${input.name}`;
    return {
      core: spawn("core", {
        id: "core",
        input: { ...v, tracker: sink.tracker, name: input.name, log: (level, line) => input.logger.log(level, id, line) },
      }),
      socket: spawn("zmqSocket", {
        id: socketId,
        systemId: socketId,
        input: { spec: { mode: "sub", endpoints: input.endpoints, topics: [], onFrames: zmqFeed(sink, input.logger, id) }, log: (l, m) => input.logger.log(l, socketId, m) },
      }),
      channel: spawn("channel", {
        id: channelId,
        systemId: channelId,
        input: { connectionRef: input.connectionRef, params, backoff: input.backoff, log: (l, m) => input.logger.log(l, channelId, m) },
      }),
    };
  }),
  initial: "starting",
  on: { STOP: ".draining" },
  states: {
    /** Until the queue is bound: before that, AMQP-side messages cannot be seen. */
    starting: {
      on: { "CHANNEL.READY": "collecting" },
    },
    collecting: {},
    draining: {
      entry: ({ context }) => {
        context.socket?.send({ type: "STOP" });
        context.channel?.send({ type: "STOP" });
        context.core?.send({ type: "STOP" });
      },
      on: {
        "xstate.done.actor.core": { target: "stopped", actions: assign({ finalSummary: ({ event }) => event.output }) },
        STOP: {},
      },
      after: { 5000: "stopped" },
    },
    stopped: { type: "final" },
  },
});
