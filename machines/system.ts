// The root actor: spawns one connection per broker and one actor per bridge,
// verifier and publisher of the manifest, restarts a failed child after a
// backoff, escalates when one fails too often, and drains on STOP.
import { assign, enqueueActions, raise, setup, type AnyActorLogic, type AnyActorRef } from "xstate";
import { backoffDelay } from "../lib/backoff.ts";

/** How to (re)start one child: its logic's name in `setup({ actors })` and its input. */
export interface ChildPlan {
  id: string;
  src: "amqpConnection" | "zmqToAmqp" | "amqpToZmq" | "verifier" | "publisher";
  /** Built when the child (re)starts, so it gets the current connection actors. */
  input: (connections: Record<string, AnyActorRef>) => unknown;
}

export interface SystemInput {
  connections: ChildPlan[];
  children: ChildPlan[];
  supervision: { baseDelayMs: number; maxDelayMs: number; maxRestarts: number; windowMs: number };
  drainTimeoutMs: number;
  log: (level: "info" | "warning" | "error", actor: string, message: string) => void;
  now?: () => number;
  random?: () => number;
}

export interface SystemContext extends SystemInput {
  refs: Record<string, AnyActorRef>;
  restarts: Record<string, number[]>;
  escalation?: string;
}

export type SystemEvent =
  | { type: "RESTART"; id: string }
  | { type: "STOP" }
  | { type: `xstate.error.actor.${string}`; error: unknown; actorId?: string }
  | { type: `xstate.done.actor.${string}`; output: unknown; actorId?: string };

const placeholder = {} as AnyActorLogic;
const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));
const idOf = (type: string) => type.replace(/^xstate\.(error|done)\.actor\./, "");

function isDone(ref: AnyActorRef | undefined) {
  return !ref || ref.getSnapshot().status !== "active";
}

/** Bridges forward, verifiers collect: past their start. */
function isReady(ref: AnyActorRef | undefined) {
  const value = ref?.getSnapshot().value;
  return value !== undefined && value !== "starting";
}

export const systemMachine = setup({
  types: {
    input: {} as SystemInput,
    context: {} as SystemContext,
    events: {} as SystemEvent,
    output: {} as { error?: string },
  },
  actors: {
    amqpConnection: placeholder,
    zmqToAmqp: placeholder,
    amqpToZmq: placeholder,
    verifier: placeholder,
    publisher: placeholder,
  },
  guards: {
    tooManyRestarts: ({ context, event }) => {
      const now = (context.now ?? Date.now)();
      const recent = (context.restarts[idOf(event.type)] ?? []).filter((t) => now - t < context.supervision.windowMs);
      return recent.length >= context.supervision.maxRestarts;
    },
    childrenDone: ({ context }) => context.children.every((c) => isDone(context.refs[c.id])),
    connectionsDone: ({ context }) => context.connections.every((c) => isDone(context.refs[c.id])),
    topologyReady: ({ context }) =>
      context.children.every((c) => c.src === "publisher" || isReady(context.refs[c.id])),
  },
  actions: {
    spawnPublishers: assign({
      refs: ({ context, spawn }) => {
        const connections = Object.fromEntries(context.connections.map((c) => [c.id, context.refs[c.id]!]));
        const refs = { ...context.refs };
        for (const plan of context.children) {
          if (plan.src === "publisher") refs[plan.id] = spawn(plan.src, { id: plan.id, systemId: plan.id, input: plan.input(connections) as never });
        }
        return refs;
      },
    }),
  },
  delays: {
    drainTimeout: ({ context }) => context.drainTimeoutMs,
  },
}).createMachine({
  id: "system",
  context: ({ input }) => ({ ...input, refs: {}, restarts: {} }),
  entry: assign({
    refs: ({ context, spawn }) => {
      const refs: Record<string, AnyActorRef> = {};
      const connections: Record<string, AnyActorRef> = {};
      for (const plan of context.connections) {
        refs[plan.id] = connections[plan.id] = spawn(plan.src, { id: plan.id, systemId: plan.id, input: plan.input({}) as never });
      }
      for (const plan of context.children) {
        if (plan.src === "publisher") continue;
        refs[plan.id] = spawn(plan.src, { id: plan.id, systemId: plan.id, input: plan.input(connections) as never });
      }
      return refs;
    },
  }),
  initial: "running",
  states: {
    running: {
      initial: "starting",
      states: {
        /** Traffic sources start once every bridge and verifier can take traffic. */
        starting: {
          always: { guard: "topologyReady", target: "up", actions: "spawnPublishers" },
          after: { 100: { target: "starting", reenter: true } },
        },
        up: {},
      },
      on: {
        STOP: "draining",
        "xstate.error.actor.*": [
          {
            guard: "tooManyRestarts",
            target: "failed",
            actions: assign({
              escalation: ({ context, event }) =>
                `${idOf(event.type)} failed ${context.supervision.maxRestarts + 1} times within ${context.supervision.windowMs / 1000} s (last: ${errorText((event as { error?: unknown }).error)}); giving up`,
            }),
          },
          {
            actions: [
              assign({
                restarts: ({ context, event }) => {
                  const id = idOf(event.type);
                  const now = (context.now ?? Date.now)();
                  const recent = (context.restarts[id] ?? []).filter((t) => now - t < context.supervision.windowMs);
                  return { ...context.restarts, [id]: [...recent, now] };
                },
              }),
              ({ context, event }) =>
                context.log("error", idOf(event.type), `crashed: ${errorText((event as { error?: unknown }).error)}; restarting after a backoff`),
              raise(({ event }) => ({ type: "RESTART" as const, id: idOf(event.type) }), {
                delay: ({ context, event }) => {
                  const id = idOf(event.type);
                  const n = (context.restarts[id] ?? []).length - 1;
                  return backoffDelay(n, context.supervision.baseDelayMs, context.supervision.maxDelayMs, context.random);
                },
              }),
            ],
          },
        ],
        // A connection that gave up (its retry budget spent) ends the process.
        "xstate.done.actor.*": {
          guard: ({ context, event }) => context.connections.some((c) => c.id === idOf(event.type)),
          target: "failed",
          actions: assign({
            escalation: ({ event }) => `${idOf(event.type)} gave up: ${(event.output as { error?: string } | undefined)?.error ?? "stopped"}`,
          }),
        },
        RESTART: {
          actions: assign({
            refs: ({ context, event, spawn }) => {
              const plan = [...context.children, ...context.connections].find((c) => c.id === event.id);
              if (!plan) return context.refs;
              const connections = Object.fromEntries(context.connections.map((c) => [c.id, context.refs[c.id]!]));
              return { ...context.refs, [plan.id]: spawn(plan.src, { id: plan.id, systemId: plan.id, input: plan.input(connections) as never }) };
            },
          }),
        },
      },
    },
    draining: {
      // Traffic sources stop at once; bridges and verifiers drain.
      entry: enqueueActions(({ context, enqueue }) => {
        for (const c of context.children) {
          const ref = context.refs[c.id];
          if (!ref) continue;
          if (c.src === "publisher") enqueue.stopChild(ref);
          else enqueue.sendTo(ref, { type: "STOP" });
        }
      }),
      after: { drainTimeout: "closing" },
      initial: "waiting",
      states: {
        waiting: {
          always: { guard: "childrenDone", target: "#system.closing" },
          after: { 50: { target: "waiting", reenter: true } },
        },
      },
    },
    closing: {
      entry: ({ context }) => context.connections.forEach((c) => context.refs[c.id]?.send({ type: "STOP" })),
      after: { 2000: "stopped" },
      initial: "waiting",
      states: {
        waiting: {
          always: { guard: "connectionsDone", target: "#system.stopped" },
          after: { 20: { target: "waiting", reenter: true } },
        },
      },
    },
    stopped: { type: "final" },
    failed: {
      type: "final",
      entry: ({ context }) => context.log("error", "system", context.escalation ?? "failed"),
    },
  },
  output: ({ context }) => ({ error: context.escalation }),
});
