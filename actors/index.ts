// Wiring: each machine's effect slots are filled with the actor logic that
// touches the world through a Transports pair — the real one in production,
// the simulated one in tests. Everything else is the same code.
import { fromPromise, type AnyActorLogic } from "xstate";
import type { AmqpConnection, AmqpConnectOptions, Transports } from "./transport.ts";
import { amqpConnectionMachine } from "../machines/amqpConnection.ts";
import { amqpChannelMachine } from "../machines/amqpChannel.ts";
import { zmqSocketMachine } from "../machines/zmqSocket.ts";
import { zmqToAmqpMachine } from "../machines/zmqToAmqp.ts";
import { amqpToZmqMachine } from "../machines/amqpToZmq.ts";
import { verifyServiceMachine } from "../machines/verifyService.ts";
import { systemMachine } from "../machines/system.ts";
import { zmqSocketLogic } from "./socket.ts";
import { preparePublisher, publishPump } from "./publisher.ts";
import { forwardDeliveries, prepareForwarder } from "./forwarder.ts";
import { feedVerifierFromAmqp, prepareVerifyFeed } from "./verify-feed.ts";
import { samplePublisherLogic } from "./samples.ts";
import { spoolerLogic } from "./spooler.ts";

export function provideActors(transports: Transports) {
  const channelRunning = (prepare: AnyActorLogic, work: AnyActorLogic) =>
    amqpChannelMachine.provide({ actors: { prepare: prepare as never, work: work as never } });
  const zmqSocket = zmqSocketMachine.provide({ actors: { socket: zmqSocketLogic(transports.zmq) } });
  const amqpConnection = amqpConnectionMachine.provide({
    actors: {
      connect: fromPromise<AmqpConnection, { url: string; options: AmqpConnectOptions }>(({ input }) =>
        transports.amqp.connect(input.url, input.options),
      ),
    },
  });
  return {
    amqpConnection,
    zmqSocket,
    zmqToAmqp: zmqToAmqpMachine.provide({ actors: { zmqSocket, channel: channelRunning(preparePublisher, publishPump), spooler: spoolerLogic } }),
    amqpToZmq: amqpToZmqMachine.provide({ actors: { zmqSocket, channel: channelRunning(prepareForwarder, forwardDeliveries) } }),
    verifier: verifyServiceMachine.provide({ actors: { zmqSocket, channel: channelRunning(prepareVerifyFeed, feedVerifierFromAmqp) } }),
    publisher: samplePublisherLogic(transports),
  };
}

/** The root machine with every slot filled from `transports`. */
export function provideSystem(transports: Transports) {
  const { amqpConnection, zmqToAmqp, amqpToZmq, verifier, publisher } = provideActors(transports);
  return systemMachine.provide({ actors: { amqpConnection, zmqToAmqp, amqpToZmq, verifier, publisher } as never });
}

