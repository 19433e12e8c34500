// The ZeroMQ transport over zeromq.js, with the socket options fedmsg sets.
import * as zmq from "zeromq";
import type { ZmqFrames, ZmqPublisher, ZmqSocketEvent, ZmqSubscriber, ZmqTransport } from "./transport.ts";

const ignore = () => {};

// fedmsg's defaults: TCP keepalive on (idle 60 s, interval 5 s, count 3), and
// reconnect after 100 ms, backing off to 1000 ms.
export const FEDMSG_SOCKET_OPTIONS = {
  tcpKeepalive: 1,
  tcpKeepaliveIdle: 60,
  tcpKeepaliveInterval: 5,
  tcpKeepaliveCount: 3,
  reconnectInterval: 100,
  reconnectMaxInterval: 1000,
  linger: 0,
} as const;

// fedmsg's high_water_mark default is 0 (no limit): ZeroMQ must not drop on its
// own; the bridges bound what they hold themselves, and count what they drop.
const SUB_OPTIONS = { ...FEDMSG_SOCKET_OPTIONS, receiveHighWaterMark: 0 };
const PUB_OPTIONS = { ...FEDMSG_SOCKET_OPTIONS, sendHighWaterMark: 0 };

type Listener = (event: ZmqSocketEvent) => void;

function observe(socket: zmq.Socket, emit: () => Listener) {
  socket.events.on("connect", (e) => emit()({ type: "connected", endpoint: e.address }));
  socket.events.on("disconnect", (e) => emit()({ type: "disconnected", endpoint: e.address }));
  socket.events.on("bind", (e) => emit()({ type: "listening", endpoint: e.address }));
  socket.events.on("bind:error", (e) => emit()({ type: "error", endpoint: e.address, error: e.error }));
}

class Sub implements ZmqSubscriber {
  onMessage: (frames: ZmqFrames) => void = ignore;
  onEvent: Listener = ignore;
  private readonly socket = new zmq.Subscriber(SUB_OPTIONS);

  constructor(endpoints: readonly string[], topics: readonly string[]) {
    observe(this.socket, () => this.onEvent);
    for (const endpoint of endpoints) this.socket.connect(endpoint);
    this.socket.subscribe(...topics);
    void this.receive();
  }

  private async receive() {
    try {
      for await (const frames of this.socket) {
        try {
          this.onMessage(frames);
        } catch (error) {
          this.onEvent({ type: "error", endpoint: "*", error: error as Error });
        }
      }
    } catch (error) {
      if (!this.socket.closed) this.onEvent({ type: "error", endpoint: "*", error: error as Error });
    }
  }

  close() {
    if (!this.socket.closed) this.socket.close();
  }
}

class Pub implements ZmqPublisher {
  onEvent: Listener = ignore;
  // zeromq.js allows one send in flight per socket; sends are chained so
  // callers may fire them back to back.
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly socket: zmq.Publisher) {
    observe(socket, () => this.onEvent);
  }

  send(frames: readonly [string | Uint8Array, string | Uint8Array]) {
    const sent = this.tail.then(() => this.socket.send(frames as [string, string]));
    this.tail = sent.catch(ignore);
    return sent;
  }

  close() {
    if (!this.socket.closed) this.socket.close();
  }
}

export const zmqTransport: ZmqTransport = {
  async subscribe(endpoints, topics) {
    return new Sub(endpoints, topics);
  },
  async publish(endpoint, bind) {
    const socket = new zmq.Publisher(PUB_OPTIONS);
    if (bind) await socket.bind(endpoint);
    else socket.connect(endpoint);
    return new Pub(socket);
  },
};
