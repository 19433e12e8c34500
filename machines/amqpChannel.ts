// An AMQP channel that follows its connection: opening → open{ready ⇄ saturated}
// → closed → reopening. What runs on the open channel (a confirm-window publisher,
// a consumer) is the `work` actor its owner provides; `prepare` declares topology.
import { assign, fromCallback, fromPromise, sendParent, sendTo, setup, type AnyActorRef, type Snapshot } from "xstate";
import type { AmqpChannel, AmqpConnection } from "../actors/transport.ts";
import { backoffDelay } from "../lib/backoff.ts";
import { redactText } from "../lib/redact.ts";

export interface AmqpChannelInput {
  /** The connection actor (machines/amqpConnection.ts) this channel lives on. */
  connectionRef: AnyActorRef;
  /** Passed to `prepare` and `work`: what the owner needs them to know. */
  params: unknown;
  backoff: { baseMs: number; maxMs: number };
  random?: () => number;
  log?: (level: "info" | "warning" | "error", message: string) => void;
}

export interface AmqpChannelContext extends AmqpChannelInput {
  connection?: AmqpConnection;
  channel?: AmqpChannel;
  attempt: number;
  closes: number;
  /** The connection is blocked by a resource alarm. */
  blocked: boolean;
  lastError?: string;
  /** Why the channel last closed, when the broker said (passed to the owner). */
  closeError?: string;
}

export interface ChannelWorkInput {
  channel: AmqpChannel;
  params: unknown;
}

export type AmqpChannelEvent =
  | { type: "CONNECTION.UP"; connection: AmqpConnection }
  | { type: "CONNECTION.DOWN" }
  | { type: "CONNECTION.BLOCKED" }
  | { type: "CONNECTION.UNBLOCKED" }
  | { type: "CHANNEL.CLOSED"; error?: string }
  | { type: "SATURATED" }
  | { type: "UNSATURATED" }
  /** The work asks for a pause (a nack): it is resumed after a backoff. */
  | { type: "RETRY_LATER" }
  | { type: "STOP" };

/** What the channel tells its work. */
export type ChannelWorkEvent = { type: "PAUSE" } | { type: "RESUME" };

/** What the channel tells its owner. */
export type ChannelToOwner = { type: "CHANNEL.READY" } | { type: "CHANNEL.SATURATED" } | { type: "CHANNEL.DOWN"; error?: string };

const errorText = (error: unknown) => redactText(error instanceof Error ? error.message : String(error));

type ConnectionSnapshot = Snapshot<unknown> & { value?: unknown; context?: { connection?: AmqpConnection } };

export const amqpChannelMachine = setup({
  types: {
    input: {} as AmqpChannelInput,
    context: {} as AmqpChannelContext,
    events: {} as AmqpChannelEvent,
  },
  actors: {
    /** Mirrors the connection actor's state as UP/DOWN events. */
    followConnection: fromCallback<AmqpChannelEvent, AnyActorRef>(({ input: connectionRef, sendBack }) => {
      let current: AmqpConnection | undefined;
      let blocked = false;
      const check = (snapshot: ConnectionSnapshot) => {
        const up = (snapshot.value === "connected" || snapshot.value === "blocked") && snapshot.context?.connection;
        const next = up ? snapshot.context!.connection : undefined;
        if (next !== current) {
          current = next;
          sendBack(next ? { type: "CONNECTION.UP", connection: next } : { type: "CONNECTION.DOWN" });
        }
        // The client refuses publishes while blocked, so the work pauses instead.
        const nowBlocked = snapshot.value === "blocked";
        if (nowBlocked !== blocked) {
          blocked = nowBlocked;
          sendBack({ type: blocked ? "CONNECTION.BLOCKED" : "CONNECTION.UNBLOCKED" });
        }
      };
      check(connectionRef.getSnapshot() as ConnectionSnapshot);
      const subscription = connectionRef.subscribe((s) => check(s as ConnectionSnapshot));
      return () => subscription.unsubscribe();
    }),
    open: fromPromise<AmqpChannel, { connection: AmqpConnection; params: unknown }>(async ({ input }) => {
      const channel = await input.connection.openChannel();
      return channel;
    }),
    prepare: fromPromise<void, ChannelWorkInput>(async () => {}),
    watchChannel: fromCallback<AmqpChannelEvent, AmqpChannel>(({ input: channel, sendBack }) => {
      channel.onClose = (error) => sendBack({ type: "CHANNEL.CLOSED", error: error?.message });
      if (channel.closed) sendBack({ type: "CHANNEL.CLOSED", error: "closed before it was watched" });
      return () => {
        channel.onClose = () => {};
      };
    }),
    work: fromCallback<ChannelWorkEvent, ChannelWorkInput>(() => () => {}),
    close: fromPromise<void, AmqpChannel | undefined>(async ({ input }) => {
      if (input && !input.closed) await input.close();
    }),
  },
  delays: {
    backoff: ({ context }) => backoffDelay(Math.max(0, context.attempt - 1), context.backoff.baseMs, context.backoff.maxMs, context.random),
  },
  guards: {
    connectionUp: ({ context }) => context.connection !== undefined && !context.connection.closed,
  },
  actions: {
    tellOwner: sendParent((_, event: ChannelToOwner) => event),
    noteClose: assign({
      channel: undefined,
      closeError: ({ event }) => ("error" in event && event.error !== undefined ? errorText(event.error) : undefined),
      attempt: ({ context }) => context.attempt + 1,
      closes: ({ context }) => context.closes + 1,
      lastError: ({ event, context }) => {
        const error = "error" in event && event.error !== undefined ? errorText(event.error) : undefined;
        if (error && event.type !== "CONNECTION.DOWN") context.log?.("warning", `channel closed: ${error}`);
        return error ?? context.lastError;
      },
    }),
  },
}).createMachine({
  id: "amqpChannel",
  context: ({ input }) => ({ ...input, attempt: 0, closes: 0, blocked: false }),
  invoke: { src: "followConnection", input: ({ context }) => context.connectionRef },
  initial: "waiting",
  on: {
    "CONNECTION.UP": { actions: assign({ connection: ({ event }) => event.connection }) },
    "CONNECTION.BLOCKED": { actions: assign({ blocked: true }) },
    "CONNECTION.UNBLOCKED": { actions: assign({ blocked: false }) },
    STOP: ".stopping",
  },
  states: {
    /** No connection yet: nothing to open a channel on. */
    waiting: {
      always: { guard: "connectionUp", target: "opening" },
      on: { "CONNECTION.UP": { target: "opening", actions: assign({ connection: ({ event }) => event.connection }) } },
    },
    opening: {
      invoke: {
        src: "open",
        input: ({ context }) => ({ connection: context.connection!, params: context.params }),
        onDone: { target: "preparing", actions: assign({ channel: ({ event }) => event.output }) },
        onError: { target: "closed", actions: [assign({ lastError: ({ event }) => errorText(event.error) }), "noteClose"] },
      },
      on: { "CONNECTION.DOWN": { target: "waiting", actions: assign({ connection: undefined }) } },
    },
    preparing: {
      invoke: [
        { src: "watchChannel", input: ({ context }) => context.channel! },
        {
          src: "prepare",
          input: ({ context }) => ({ channel: context.channel!, params: context.params }),
          onDone: { target: "open", actions: assign({ attempt: 0 }) },
          onError: {
            target: "closed",
            actions: [
              ({ context, event }) => context.log?.("error", `channel setup failed: ${errorText(event.error)}`),
              assign({ lastError: ({ event }) => errorText(event.error) }),
              ({ context }) => void context.channel?.close().catch(() => {}),
              "noteClose",
            ],
          },
        },
      ],
      on: {
        "CHANNEL.CLOSED": { target: "closed", actions: "noteClose" },
        "CONNECTION.DOWN": { target: "closed", actions: [assign({ connection: undefined }), "noteClose"] },
      },
    },
    open: {
      invoke: [
        { src: "watchChannel", input: ({ context }) => context.channel! },
        { id: "work", src: "work", input: ({ context }) => ({ channel: context.channel!, params: context.params }) },
      ],
      initial: "entering",
      states: {
        entering: { always: [{ guard: ({ context }) => context.blocked, target: "blocked" }, { target: "ready" }] },
        ready: {
          entry: { type: "tellOwner", params: { type: "CHANNEL.READY" } },
          on: { SATURATED: "saturated", RETRY_LATER: "retrying" },
        },
        saturated: {
          entry: { type: "tellOwner", params: { type: "CHANNEL.SATURATED" } },
          on: { UNSATURATED: "ready", RETRY_LATER: "retrying" },
        },
        /** connection.blocked (a resource alarm): nothing is published until unblocked. */
        blocked: {
          entry: [sendTo("work", { type: "PAUSE" }), { type: "tellOwner", params: { type: "CHANNEL.SATURATED" } }],
          on: { "CONNECTION.UNBLOCKED": { target: "ready", actions: [assign({ blocked: false }), sendTo("work", { type: "RESUME" })] } },
        },
        /** A publish was nacked: the work holds back until the backoff passes. */
        retrying: {
          entry: assign({ attempt: ({ context }) => context.attempt + 1 }),
          after: { backoff: { target: "ready", actions: sendTo("work", { type: "RESUME" }) } },
        },
      },
      on: {
        "CHANNEL.CLOSED": { target: "closed", actions: "noteClose" },
        "CONNECTION.DOWN": { target: "closed", actions: [assign({ connection: undefined }), "noteClose"] },
        "CONNECTION.BLOCKED": { target: ".blocked", actions: assign({ blocked: true }) },
      },
    },
    closed: {
      entry: sendParent(({ context }) => ({ type: "CHANNEL.DOWN", error: context.closeError }) satisfies ChannelToOwner),
      always: [{ guard: "connectionUp", target: "reopening" }, { target: "waiting" }],
    },
    reopening: {
      after: { backoff: [{ guard: "connectionUp", target: "opening" }, { target: "waiting" }] },
      on: { "CONNECTION.DOWN": { target: "waiting", actions: assign({ connection: undefined }) } },
    },
    stopping: {
      invoke: { src: "close", input: ({ context }) => context.channel, onDone: "stopped", onError: "stopped" },
    },
    stopped: { type: "final" },
  },
});
