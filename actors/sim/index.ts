// Simulated transports for tests and failure scenarios: supply them where
// production supplies actors/amqp.ts and actors/zmq.ts.
import type { Transports } from "../transport.ts";
import { SimBroker } from "./broker.ts";
import { SimBus } from "./bus.ts";

export {
  AmqpReplyCode,
  flushMicrotasks,
  routeByHost,
  SimAmqpError,
  SimBroker,
  topicMatches,
} from "./broker.ts";
export type { SimBrokerOptions, SimQueuedMessage } from "./broker.ts";
export { endpointsMatch, SimBus } from "./bus.ts";
export type { SimBusOptions } from "./bus.ts";

/** A fresh broker and bus, and the Transports over them. */
export function simTransports(
  broker: SimBroker = new SimBroker(),
  bus: SimBus = new SimBus(),
): Transports & { broker: SimBroker; bus: SimBus } {
  return { amqp: broker, zmq: bus, broker, bus };
}
