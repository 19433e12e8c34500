// The zmqSocket machine's I/O: opens a SUB or PUB through a ZmqTransport and
// reports its connection events. Messages go straight to the owner's intake.
import { fromCallback } from "xstate";
import type { ZmqSocketEvent, ZmqSocketSpec } from "../machines/zmqSocket.ts";
import type { ZmqPublisher, ZmqSubscriber, ZmqTransport } from "./transport.ts";

export function zmqSocketLogic(transport: ZmqTransport) {
  return fromCallback<ZmqSocketEvent, ZmqSocketSpec>(({ input: spec, sendBack }) => {
    let closed = false;
    let socket: ZmqSubscriber | ZmqPublisher | undefined;
    const onEvent = (event: Parameters<ZmqSubscriber["onEvent"]>[0]) => {
      if (event.type === "connected" || event.type === "listening") sendBack({ type: "ZMQ.UP", endpoint: event.endpoint });
      else if (event.type === "disconnected") sendBack({ type: "ZMQ.DOWN", endpoint: event.endpoint });
      else sendBack({ type: "ZMQ.ERROR", endpoint: event.endpoint, error: event.error.message });
    };

    if (spec.mode === "sub") {
      let high = false;
      // No topics means every topic: the empty prefix, as ZeroMQ spells it.
      transport.subscribe(spec.endpoints, spec.topics.length ? spec.topics : [""]).then(
        (sub) => {
          if (closed) return sub.close();
          socket = sub;
          sub.onEvent = onEvent;
          sub.onMessage = (frames) => {
            const accepted = spec.onFrames(frames);
            // Only the edges become events: the machine is not touched per message.
            if (accepted === high) {
              high = !accepted;
              sendBack({ type: high ? "HIGH_WATER" : "LOW_WATER" });
            }
          };
        },
        (error: Error) => sendBack({ type: "ZMQ.ERROR", endpoint: spec.endpoints.join(","), error: error.message }),
      );
    } else {
      transport.publish(spec.endpoint, spec.bind).then(
        (pub) => {
          if (closed) return pub.close();
          socket = pub;
          pub.onEvent = onEvent;
          spec.onPublisher(pub);
          // A bound PUB is usable at once; a connecting one queues until its peer is there.
          sendBack({ type: "ZMQ.UP", endpoint: spec.endpoint });
        },
        (error: Error) => sendBack({ type: "ZMQ.ERROR", endpoint: spec.endpoint, error: `cannot ${spec.bind ? "bind" : "connect"}: ${error.message}` }),
      );
    }

    return () => {
      closed = true;
      if (spec.mode === "pub") spec.onPublisher(undefined);
      socket?.close();
    };
  });
}
