// One AMQP connection per broker, shared by every bridge and verifier using it.
// Reconnection is explicit here: connecting → connected ⇄ blocked → reconnecting.
import { assign, fromCallback, fromPromise, setup } from "xstate";
import type { AmqpConnection, AmqpConnectOptions } from "../actors/transport.ts";
import { backoffDelay } from "../lib/backoff.ts";
import { redactText, redactUrl } from "../lib/redact.ts";

export interface AmqpConnectionInput {
  broker: string;
  url: string;
  options: AmqpConnectOptions;
  /** Attempts before giving up (failed); Infinity keeps trying. */
  maxAttempts: number;
  backoff: { baseMs: number; maxMs: number };
  random?: () => number;
  log?: (level: "info" | "warning" | "error", message: string) => void;
}

export interface AmqpConnectionContext extends AmqpConnectionInput {
  connection?: AmqpConnection;
  attempt: number;
  reconnects: number;
  lastError?: string;
  blockedReason?: string;
}

export type AmqpConnectionEvent =
  | { type: "LOST"; error?: string }
  | { type: "BLOCKED"; reason: string }
  | { type: "UNBLOCKED" }
  | { type: "STOP" };

const noop = () => {};
const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));
/** A transport error that already names its fix (TLS verification, key files, a refused login: actors/amqp.ts AmqpConnectError). */
const explainsItself = (error: unknown) => typeof error === "object" && error !== null && typeof (error as { kind?: unknown }).kind === "string";
/** Certificate verification off: `tls.insecure: true`, or `?insecure` written in an amqps:// URL. */
const verificationOff = ({ url, options }: AmqpConnectionInput) => {
  try {
    const u = new URL(url);
    return u.protocol === "amqps:" && (options.tls?.insecure === true || u.searchParams.has("insecure"));
  } catch {
    return false;
  }
};

export const amqpConnectionMachine = setup({
  types: {
    input: {} as AmqpConnectionInput,
    context: {} as AmqpConnectionContext,
    events: {} as AmqpConnectionEvent,
    output: {} as { error?: string },
  },
  actors: {
    connect: fromPromise<AmqpConnection, { url: string; options: AmqpConnectOptions }>(() =>
      Promise.reject(new Error("connect: no AMQP transport provided")),
    ),
    /** Turns the connection's callbacks into events. */
    watch: fromCallback<AmqpConnectionEvent, AmqpConnection>(({ input: connection, sendBack }) => {
      connection.onClose = (error) => sendBack({ type: "LOST", error: error?.message });
      connection.onBlocked = (reason) => sendBack({ type: "BLOCKED", reason });
      connection.onUnblocked = () => sendBack({ type: "UNBLOCKED" });
      if (connection.closed) sendBack({ type: "LOST", error: "closed before it was watched" });
      return () => {
        connection.onBlocked = noop;
        connection.onUnblocked = noop;
      };
    }),
    close: fromPromise<void, AmqpConnection | undefined>(async ({ input }) => {
      if (input) {
        input.onClose = noop;
        await input.close();
      }
    }),
  },
  delays: {
    backoff: ({ context }) => backoffDelay(context.attempt - 1, context.backoff.baseMs, context.backoff.maxMs, context.random),
  },
  guards: {
    outOfAttempts: ({ context }) => context.attempt + 1 >= context.maxAttempts,
  },
  actions: {
    noteFailure: assign({
      attempt: ({ context }) => context.attempt + 1,
      lastError: ({ event }) => redactText(errorText((event as { error?: unknown }).error)),
    }),
    onLost: assign({
      connection: undefined,
      attempt: 1,
      reconnects: ({ context }) => context.reconnects + 1,
      blockedReason: undefined,
      lastError: ({ event, context }) => {
        const error = (event as { error?: string }).error ?? "connection lost";
        context.log?.("warning", `connection lost: ${redactText(error)}; reconnecting`);
        return redactText(error);
      },
    }),
  },
}).createMachine({
  id: "amqpConnection",
  context: ({ input }) => ({ ...input, attempt: 0, reconnects: 0 }),
  entry: ({ context }) =>
    verificationOff(context) &&
    context.log?.("warning", `TLS certificate verification is OFF for ${redactUrl(context.url)} (tls.insecure): the broker's identity is not checked, so whoever sits in between can read the traffic and the password; for tests only, set tls.ca_cert instead`),
  initial: "connecting",
  on: { STOP: ".stopping" },
  states: {
    connecting: {
      invoke: {
        src: "connect",
        input: ({ context }) => ({ url: context.url, options: context.options }),
        onDone: {
          target: "connected",
          actions: [
            assign({ connection: ({ event }) => event.output, attempt: 0, lastError: undefined }),
            ({ context }) => context.log?.("info", `connected to ${redactUrl(context.url)}`),
          ],
        },
        onError: [
          { guard: "outOfAttempts", target: "failed", actions: "noteFailure" },
          {
            target: "reconnecting",
            actions: [
              "noteFailure",
              ({ context, event }) =>
                context.attempt === 1 &&
                context.log?.(
                  "error",
                  explainsItself(event.error)
                    ? `cannot connect to the broker at ${redactUrl(context.url)}: ${context.lastError}; retrying`
                    : `cannot reach the broker at ${redactUrl(context.url)}: ${context.lastError}; is RabbitMQ running? (start it with scripts/ensure-broker.sh or \`rabbitmq-server -detached\`); retrying`,
                ),
            ],
          },
        ],
      },
    },
    connected: {
      invoke: { src: "watch", input: ({ context }) => context.connection! },
      on: {
        BLOCKED: { target: "blocked", actions: assign({ blockedReason: ({ event }) => event.reason }) },
        LOST: { target: "reconnecting", actions: "onLost" },
      },
    },
    blocked: {
      entry: ({ context }) => context.log?.("warning", `broker blocked publishing: ${context.blockedReason}`),
      invoke: { src: "watch", input: ({ context }) => context.connection! },
      on: {
        UNBLOCKED: {
          target: "connected",
          actions: [assign({ blockedReason: undefined }), ({ context }) => context.log?.("info", "broker unblocked publishing")],
        },
        LOST: { target: "reconnecting", actions: "onLost" },
      },
    },
    reconnecting: {
      after: { backoff: "connecting" },
    },
    stopping: {
      invoke: { src: "close", input: ({ context }) => context.connection, onDone: "stopped", onError: "stopped" },
    },
    stopped: { type: "final" },
    failed: {
      type: "final",
      entry: ({ context }) => context.log?.("error", `giving up on ${redactUrl(context.url)} after ${context.attempt} attempts: ${context.lastError}`),
    },
  },
  output: ({ context }) => ({ error: context.lastError }),
});
