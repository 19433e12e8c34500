// Both bridges end to end on the local RabbitMQ and real ZeroMQ sockets on loopback.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import * as zmq from "zeromq";
import { amqpTransport } from "../actors/amqp.ts";
import { zmqTransport } from "../actors/zmq.ts";
import { AMQP_URL, collect, eventually, freePort, startSystem, unique, testChannel } from "./support/system.ts";

const real = { amqp: amqpTransport, zmq: zmqTransport };
const N = 10_000;
const decoder = new TextDecoder();

const amqp = testChannel();

/** A durable topic exchange and an exclusive queue bound `#` on it, collecting what arrives. */
async function collectOn(exchange: string) {
  await amqp.ch.exchangeDeclare(exchange, "topic", { durable: true });
  return collect(amqp.ch, exchange);
}

function envelope(i: number, extra: Record<string, unknown> = {}) {
  return {
    topic: "org.fedoraproject.test.bridge.message",
    msg: { n: i, text: "ünïcödé ✓ 🎉", nested: { ok: true } },
    msg_id: `2026-${randomUUID()}`,
    timestamp: 1764300000,
    i,
    username: "tester",
    headers: { origin: "test", n: i },
    ...extra,
  };
}

describe("zmq_to_amqp on RabbitMQ", () => {
  it(`forwards ${N} fedmsg messages with routing key, message_id, body and headers`, async () => {
    const exchange = unique("test.zmq.topic");
    const received = await collectOn(exchange);
    const port = freePort();
    const pub = new zmq.Publisher({ sendHighWaterMark: 0 });
    await pub.bind(`tcp://127.0.0.1:${port}`);
    const run = startSystem(
      {
        brokers: { main: { url: AMQP_URL } },
        bridges: [{ name: "in", kind: "zmq_to_amqp", zmq: { endpoints: [`tcp://127.0.0.1:${port}`] }, amqp: { broker: "main", exchange } }],
      },
      real,
    );
    try {
      await run.until("zmq_to_amqp:in", "forwarding");
      // ZeroMQ's slow joiner: probe until the subscription has reached the PUB.
      await eventually(() => {
        void pub.send(["org.fedoraproject.test.probe", JSON.stringify(envelope(0, { topic: "org.fedoraproject.test.probe" }))]);
        return received.length > 0;
      }, "the first probe to arrive");
      await new Promise((r) => setTimeout(r, 200));
      received.length = 0;

      const sent = new Map<string, ReturnType<typeof envelope>>();
      for (let i = 1; i <= N; i++) {
        const e = envelope(i);
        sent.set(e.msg_id, e);
        await pub.send([e.topic, JSON.stringify(e)]);
      }
      const ours = () => received.filter((m) => m.routingKey !== "org.fedoraproject.test.probe");
      await eventually(() => ours().length >= N, `${N} messages in AMQP`, 60_000);

      const seen = new Set<string>();
      for (const m of ours()) {
        const id = m.properties.messageId!;
        const e = sent.get(id);
        assert.ok(e, `unexpected message_id ${id}`);
        seen.add(id);
        assert.equal(m.routingKey, e.topic);
        assert.deepEqual(JSON.parse(decoder.decode(m.body as Uint8Array)), e.msg);
        assert.equal(m.properties.contentType, "application/json");
        assert.equal(m.properties.contentEncoding, "utf-8");
        assert.equal(m.properties.deliveryMode, 2);
        const h = m.properties.headers!;
        assert.equal(h.fedora_messaging_schema, "base.message");
        assert.equal(h.fedora_messaging_severity, 20);
        assert.match(String(h["sent-at"]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
        assert.equal(h.origin, "test");
        assert.equal(h.n, e.i);
      }
      assert.equal(seen.size, N);
    } finally {
      await run.stop();
      pub.close();
      await amqp.ch.exchangeDelete(exchange);
    }
  });
});

describe("amqp_to_zmq on RabbitMQ", () => {
  it(`republishes ${N} AMQP messages as fedmsg envelopes on the PUB socket`, async () => {
    const exchange = unique("test.amq.topic");
    await amqp.ch.exchangeDeclare(exchange, "topic", { durable: false, autoDelete: false });
    const port = freePort();
    const run = startSystem(
      {
        brokers: { main: { url: AMQP_URL } },
        bridges: [{ name: "out", kind: "amqp_to_zmq", zmq: { publish_endpoint: `tcp://127.0.0.1:${port}` }, amqp: { broker: "main", exchange } }],
      },
      real,
    );
    const sub = new zmq.Subscriber({ receiveHighWaterMark: 0 });
    sub.connect(`tcp://127.0.0.1:${port}`);
    sub.subscribe();
    const frames: [string, string][] = [];
    void (async () => {
      for await (const [t, b] of sub) frames.push([t!.toString(), b!.toString()]);
    })().catch(() => {});
    const publish = (routingKey: string, body: unknown, messageId: string | undefined, headers: Record<string, string | number | boolean> = {}) =>
      amqp.ch.basicPublish(exchange, routingKey, JSON.stringify(body), { messageId, contentType: "application/json", headers });
    try {
      await run.until("amqp_to_zmq:out", "forwarding");
      await eventually(() => {
        void publish("org.fedoraproject.test.probe", { probe: true }, randomUUID());
        return frames.length > 0;
      }, "the first probe to cross");
      await new Promise((r) => setTimeout(r, 200));
      frames.length = 0;

      const ids = new Set<string>();
      for (let i = 1; i <= N; i++) {
        const id = randomUUID();
        ids.add(id);
        await publish("org.fedoraproject.test.native", { n: i, s: "日本語 🎉" }, id, { fedora_messaging_severity: 20, custom: `h${i}` });
      }
      const ours = () => frames.filter(([t]) => t === "org.fedoraproject.test.native");
      await eventually(() => ours().length >= N, `${N} messages on ZeroMQ`, 60_000);
      const year = new Date().getUTCFullYear();
      const seen = new Set<string>();
      for (const [topic, body] of ours()) {
        const e = JSON.parse(body);
        assert.equal(topic, e.topic);
        assert.equal(e.username, "amqp-bridge");
        assert.equal(typeof e.timestamp, "number");
        assert.equal(typeof e.i, "number");
        assert.ok(e.msg_id.startsWith(`${year}-`));
        const id = e.msg_id.slice(5);
        assert.ok(ids.has(id), `unexpected id ${id}`);
        seen.add(id);
        assert.equal(e.msg.s, "日本語 🎉");
        assert.equal(e.headers.custom, `h${e.msg.n}`);
      }
      assert.equal(seen.size, N);
    } finally {
      await run.stop();
      sub.close();
      await amqp.ch.exchangeDelete(exchange);
    }
  });
});

describe("loop prevention", () => {
  it("both bridges against each other: every message crosses once and never comes back", async () => {
    const zmqTopic = unique("test.zmq.topic");
    const amqTopic = unique("test.amq.topic");
    await amqp.ch.exchangeDeclare(amqTopic, "topic", { durable: true });
    const onZmqTopic = await collectOn(zmqTopic);
    const onAmqTopic = await collectOn(amqTopic);
    const fedmsgPort = freePort();
    const bridgePort = freePort();
    const external = new zmq.Publisher({ sendHighWaterMark: 0 });
    await external.bind(`tcp://127.0.0.1:${fedmsgPort}`);
    const run = startSystem(
      {
        brokers: { main: { url: AMQP_URL } },
        bridges: [
          {
            name: "in",
            kind: "zmq_to_amqp",
            zmq: { endpoints: [`tcp://127.0.0.1:${fedmsgPort}`, `tcp://127.0.0.1:${bridgePort}`] },
            amqp: { broker: "main", exchange: zmqTopic },
          },
          { name: "out", kind: "amqp_to_zmq", zmq: { publish_endpoint: `tcp://127.0.0.1:${bridgePort}` }, amqp: { broker: "main", exchange: amqTopic } },
        ],
      },
      real,
    );
    try {
      await run.until("zmq_to_amqp:in", "forwarding");
      await run.until("amqp_to_zmq:out", "forwarding");
      // Probe the ZeroMQ path in (fedmsg → zmq.topic) until subscriptions are live.
      await eventually(() => {
        void external.send(["org.fedoraproject.test.probe", JSON.stringify(envelope(0, { topic: "org.fedoraproject.test.probe" }))]);
        return onZmqTopic.length > 0;
      }, "the ZeroMQ path to come up");
      const stats = () => (run.ref("zmq_to_amqp:in").getSnapshot().context as { stats: { dropped: Map<string, number> } }).stats;
      await eventually(() => {
        void amqp.ch.basicPublish(amqTopic, "org.fedoraproject.test.probe", "{}", { messageId: randomUUID() });
        return (stats().dropped.get("loop") ?? 0) > 0;
      }, "the AMQP path to come round to zmq_to_amqp");
      await new Promise((r) => setTimeout(r, 300));
      onZmqTopic.length = 0;
      onAmqTopic.length = 0;
      const loopsBefore = stats().dropped.get("loop") ?? 0;

      const M = 200;
      for (let i = 0; i < M; i++) {
        const e = envelope(i, { topic: "org.fedoraproject.test.fromzmq" });
        await external.send([e.topic, JSON.stringify(e)]);
        await amqp.ch.basicPublish(amqTopic, "org.fedoraproject.test.fromamqp", JSON.stringify({ i }), { messageId: randomUUID() });
      }
      await eventually(() => onZmqTopic.length >= M && (stats().dropped.get("loop") ?? 0) - loopsBefore >= M, "both directions", 30_000);
      await new Promise((r) => setTimeout(r, 500));
      // The ZeroMQ-born messages reached zmq.topic exactly once each …
      assert.equal(onZmqTopic.length, M);
      assert.ok(onZmqTopic.every((m) => m.routingKey === "org.fedoraproject.test.fromzmq"));
      // … never came back to amq.topic, and the AMQP-born ones were dropped as loops, not re-published.
      assert.equal(onAmqTopic.filter((m) => m.routingKey === "org.fedoraproject.test.fromzmq").length, 0);
      assert.equal((stats().dropped.get("loop") ?? 0) - loopsBefore, M);
    } finally {
      await run.stop();
      external.close();
      await amqp.ch.exchangeDelete(zmqTopic);
      await amqp.ch.exchangeDelete(amqTopic);
    }
  });
});
