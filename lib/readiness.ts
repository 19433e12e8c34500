// /ready: whether every bridge and verifier is connected on both sides, read
// from the live actor tree.
//
//   system            in `running` (not draining, closing, stopped or failed)
//   zmq_to_amqp:<n>   in `forwarding` or `backpressured`; its channel amqp:<broker>:<k>
//                     in `open.*`; its SUB zmq:<n> in `live.connected` or `live.highWater`
//   amqp_to_zmq:<n>   the same, with its PUB zmq:<n>
//   verify:<n>        in `collecting`; its channel in `open.*`; its SUB zmq:verify-<n>
//                     in `live.connected` or `live.highWater`
//
// `backpressured` counts as ready only while its channel is open (a full confirm
// window or a broker alarm, `open.saturated` / `open.blocked`: still connected);
// after a lost channel the bridge is backpressured with its channel closed, and
// that is not ready. A SUB is connected while at least one of its endpoints is.
// Sample publishers are traffic for the demo and are not checked. An actor being
// restarted by the supervisor (crashed, waiting out its backoff) is not ready.
import type { AnyActorRef } from "xstate";
import type { SystemContext } from "../machines/system.ts";
import { machineOf, namedChildren, stateOf, type Inspectable } from "./actor-watch.ts";
import { redactText } from "./redact.ts";

export interface ActorReadiness {
  actor: string;
  ready: boolean;
  state: string;
  /** Why not, naming the part that is not connected. */
  reason?: string;
}

export interface Readiness {
  ready: boolean;
  actors: ActorReadiness[];
}

const BRIDGE_STATES = new Set(["forwarding", "backpressured"]);
const SOCKET_STATES = new Set(["live.connected", "live.highWater"]);

function childOf(ref: AnyActorRef, machine: string): [string, AnyActorRef] | undefined {
  return namedChildren(ref).find(([, child]) => machineOf(child) === machine);
}

function check(id: string, ref: AnyActorRef | undefined, accepted: Set<string>): ActorReadiness {
  if (!ref) return { actor: id, ready: false, state: "absent", reason: `${id} is not running` };
  const snapshot = ref.getSnapshot() as Inspectable;
  const state = stateOf(ref);
  if (snapshot.status !== "active") {
    return { actor: id, ready: false, state, reason: `${id} ${snapshot.status === "error" ? "crashed and is being restarted" : "has stopped"}` };
  }
  if (!accepted.has(state)) return { actor: id, ready: false, state, reason: `${id} is ${state}, not ${[...accepted].join(" or ")}` };
  const channel = childOf(ref, "amqpChannel");
  if (!channel) return { actor: id, ready: false, state, reason: `${id} has no AMQP channel yet` };
  const channelState = stateOf(channel[1]);
  if (!channelState.startsWith("open")) return { actor: id, ready: false, state, reason: `AMQP channel ${channel[0]} is ${channelState}, not open` };
  const socket = childOf(ref, "zmqSocket");
  if (!socket) return { actor: id, ready: false, state, reason: `${id} has no ZeroMQ socket yet` };
  const socketState = stateOf(socket[1]);
  if (!SOCKET_STATES.has(socketState)) return { actor: id, ready: false, state, reason: `ZeroMQ socket ${socket[0]} is ${socketState}, not connected` };
  return { actor: id, ready: true, state };
}

/** Reads readiness from the root actor (machines/system.ts). */
export function readiness(system: AnyActorRef): Readiness {
  const snapshot = system.getSnapshot() as Inspectable;
  const context = snapshot.context as unknown as SystemContext | undefined;
  const actors: ActorReadiness[] = [];
  const systemState = stateOf(system);
  if (snapshot.status !== "active" || !systemState.startsWith("running")) {
    actors.push({ actor: "system", ready: false, state: systemState, reason: `the system is ${systemState}` });
  }
  for (const plan of context?.children ?? []) {
    if (plan.src === "publisher") continue;
    const ref = context?.refs[plan.id];
    actors.push(check(plan.id, ref, plan.src === "verifier" ? new Set(["collecting"]) : BRIDGE_STATES));
  }
  for (const a of actors) {
    a.actor = redactText(a.actor);
    if (a.reason) a.reason = redactText(a.reason);
  }
  return { ready: actors.every((a) => a.ready), actors };
}
