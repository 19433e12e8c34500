// A ZeroMQ socket: a SUB connected to many endpoints, or a PUB that binds or
// connects. ZeroMQ reconnects by itself; this machine makes that visible:
// connecting → connected ⇄ highWater → reconnecting.
import { assign, fromCallback, setup } from "xstate";
import type { ZmqFrames, ZmqPublisher } from "../actors/transport.ts";

export type ZmqSocketSpec =
  | { mode: "sub"; endpoints: readonly string[]; topics: readonly string[]; onFrames: (frames: ZmqFrames) => boolean }
  | { mode: "pub"; endpoint: string; bind: boolean; onPublisher: (publisher: ZmqPublisher | undefined) => void };

export type ZmqSocketEvent =
  | { type: "ZMQ.UP"; endpoint: string }
  | { type: "ZMQ.DOWN"; endpoint: string }
  | { type: "ZMQ.ERROR"; endpoint: string; error: string }
  /** The owner could not take a message (its buffer is full); LOW_WATER when it can again. */
  | { type: "HIGH_WATER" }
  | { type: "LOW_WATER" }
  | { type: "STOP" };

export interface ZmqSocketContext {
  spec: ZmqSocketSpec;
  up: string[];
  lastError?: string;
  log?: (level: "info" | "warning" | "error", message: string) => void;
}

export const zmqSocketMachine = setup({
  types: {
    input: {} as { spec: ZmqSocketSpec; log?: ZmqSocketContext["log"] },
    context: {} as ZmqSocketContext,
    events: {} as ZmqSocketEvent,
  },
  actors: {
    socket: fromCallback<ZmqSocketEvent, ZmqSocketSpec>(() => () => {}),
  },
  guards: {
    anyUp: ({ context }) => context.up.length > 0,
  },
  actions: {
    markUp: assign({ up: ({ context, event }) => ("endpoint" in event && !context.up.includes(event.endpoint) ? [...context.up, event.endpoint] : context.up) }),
    markDown: assign({ up: ({ context, event }) => context.up.filter((e) => !("endpoint" in event) || e !== event.endpoint) }),
  },
}).createMachine({
  id: "zmqSocket",
  context: ({ input }) => ({ spec: input.spec, log: input.log, up: [] }),
  initial: "live",
  on: { STOP: ".stopped" },
  states: {
    live: {
      invoke: { id: "socket", src: "socket", input: ({ context }) => context.spec },
      on: {
        "ZMQ.ERROR": {
          actions: [
            assign({ lastError: ({ event }) => `${event.endpoint}: ${event.error}` }),
            ({ context, event }) => context.log?.("error", `socket error on ${event.endpoint}: ${event.error}`),
          ],
        },
      },
      initial: "connecting",
      states: {
        connecting: { on: { "ZMQ.UP": { target: "connected", actions: "markUp" } } },
        connected: {
          on: {
            "ZMQ.UP": { actions: "markUp" },
            "ZMQ.DOWN": [
              { actions: "markDown", target: "reconnecting", guard: ({ context, event }) => context.up.every((e) => e === event.endpoint) },
              { actions: "markDown" },
            ],
            HIGH_WATER: "highWater",
          },
        },
        highWater: {
          entry: ({ context }) => context.log?.("warning", "buffer full: incoming messages are overflowing"),
          on: {
            LOW_WATER: "connected",
            "ZMQ.UP": { actions: "markUp" },
            "ZMQ.DOWN": { actions: "markDown" },
          },
        },
        reconnecting: {
          entry: ({ context }) => context.log?.("warning", "every endpoint disconnected; ZeroMQ is reconnecting"),
          on: { "ZMQ.UP": { target: "connected", actions: "markUp" } },
        },
      },
    },
    stopped: { type: "final" },
  },
});
