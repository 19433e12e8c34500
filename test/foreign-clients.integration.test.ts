// Clients this project did not write read the bridges' output: Python's pika
// consumes what zmq_to_amqp publishes, pyzmq subscribes to what amqp_to_zmq
// republishes (scripts/ensure-peers.sh installs them from Debian's packages).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import * as zmq from "zeromq";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { amqpTransport } from "../actors/amqp.ts";
import { zmqTransport } from "../actors/zmq.ts";
import { AMQP_URL, eventually, freePort, startSystem, unique } from "./support/system.ts";

const real = { amqp: amqpTransport, zmq: zmqTransport };
const PYTHON = "/usr/bin/python3";
const peer = (name: string) => fileURLToPath(new URL(`./peers/${name}`, import.meta.url));

/** A Python peer whose stdout lines are collected; "ready" marks its start. */
function python(script: string, args: string[]) {
  const child = spawn(PYTHON, [peer(script), ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let buffered = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => {
    buffered += d.toString("utf8");
    const parts = buffered.split("\n");
    buffered = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  return { child, lines, err: () => err, exited, records: () => lines.filter((l) => l !== "ready").map((l) => JSON.parse(l)) };
}

describe("standard clients in another language read the bridges' output", () => {
  it("pika (Python, AMQP 0.9.1) reads zmq_to_amqp's messages with their properties and headers", async () => {
    const exchange = unique("test.peer.zmq.topic");
    const admin = new AMQPClient(AMQP_URL);
    await admin.connect();
    const ch = await admin.channel();
    await ch.exchangeDeclare(exchange, "topic", { durable: true });
    const N = 200;
    const consumer = python("pika_consume.py", [AMQP_URL.replace("%2F", "%2F"), exchange, String(N + 1000)]);
    const port = freePort();
    const pub = new zmq.Publisher({ sendHighWaterMark: 0 });
    await pub.bind(`tcp://127.0.0.1:${port}`);
    const run = startSystem(
      { brokers: { main: { url: AMQP_URL } }, bridges: [{ name: "p", kind: "zmq_to_amqp", zmq: { endpoints: [`tcp://127.0.0.1:${port}`] }, amqp: { broker: "main", exchange } }] },
      real,
    );
    try {
      await eventually(() => consumer.lines.includes("ready"), "pika to bind its queue", 30_000);
      await run.until("zmq_to_amqp:p", "forwarding");
      const probe = () => JSON.stringify({ topic: "probe", msg: {}, msg_id: `probe-${randomUUID()}`, username: "t" });
      await eventually(() => {
        void pub.send(["org.fedoraproject.test.probe", probe()]);
        return consumer.records().length > 0;
      }, "the first message at pika", 30_000);
      const sent = new Map<string, unknown>();
      for (let n = 0; n < N; n++) {
        const id = `2026-${randomUUID()}`;
        const msg = { n, text: "ünïcödé 🎉 日本語", nested: { list: [1, 2.5, null, true] } };
        sent.set(id, msg);
        await pub.send(["org.fedoraproject.test.peer", JSON.stringify({ topic: "org.fedoraproject.test.peer", msg, msg_id: id, timestamp: 1, i: n, username: "t", headers: { origin: "peer-test" } })]);
      }
      await eventually(() => consumer.records().filter((r) => sent.has(r.message_id)).length >= N, `${N} messages at pika`, 30_000);
      for (const r of consumer.records().filter((r) => sent.has(r.message_id))) {
        assert.equal(r.routing_key, "org.fedoraproject.test.peer");
        assert.deepEqual(r.body, sent.get(r.message_id));
        assert.equal(r.content_type, "application/json");
        assert.equal(r.content_encoding, "utf-8");
        assert.equal(r.delivery_mode, 2);
        assert.equal(r.headers.fedora_messaging_schema, "base.message");
        assert.equal(r.headers.fedora_messaging_severity, 20);
        assert.match(r.headers["sent-at"], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
        assert.equal(r.headers.origin, "peer-test");
      }
    } finally {
      consumer.child.kill();
      await run.stop();
      pub.close();
      await ch.exchangeDelete(exchange);
      await admin.close();
    }
  });

  it("pyzmq (Python, libzmq) receives amqp_to_zmq's fedmsg envelopes", async () => {
    const exchange = unique("test.peer.amq.topic");
    const admin = new AMQPClient(AMQP_URL);
    await admin.connect();
    const ch = await admin.channel();
    await ch.exchangeDeclare(exchange, "topic", { durable: true });
    const port = freePort();
    const run = startSystem(
      { brokers: { main: { url: AMQP_URL } }, bridges: [{ name: "p", kind: "amqp_to_zmq", zmq: { publish_endpoint: `tcp://127.0.0.1:${port}` }, amqp: { broker: "main", exchange } }] },
      real,
    );
    const N = 200;
    const subscriber = python("zmq_subscribe.py", [`tcp://127.0.0.1:${port}`, String(N + 1000)]);
    try {
      await run.until("amqp_to_zmq:p", "forwarding");
      await eventually(() => subscriber.lines.includes("ready"), "pyzmq to connect", 30_000);
      await eventually(() => {
        void ch.basicPublish(exchange, "org.fedoraproject.test.probe", "{}", { messageId: randomUUID() });
        return subscriber.records().length > 0;
      }, "the first message at pyzmq", 30_000);
      const sent = new Map<string, unknown>();
      for (let n = 0; n < N; n++) {
        const id = randomUUID();
        const body = { n, text: "ünïcödé 🎉", f: 0.5 };
        sent.set(id, body);
        await ch.basicPublish(exchange, "org.fedoraproject.test.peer", JSON.stringify(body), { messageId: id, contentType: "application/json", headers: { fedora_messaging_severity: 30 } });
      }
      const ours = () => subscriber.records().filter(([topic]: [string]) => topic === "org.fedoraproject.test.peer");
      await eventually(() => ours().length >= N, `${N} envelopes at pyzmq`, 30_000);
      const year = new Date().getUTCFullYear();
      for (const [topic, e] of ours()) {
        assert.equal(e.topic, topic);
        assert.equal(e.username, "amqp-bridge");
        assert.match(e.msg_id, new RegExp(`^${year}-`));
        assert.deepEqual(e.msg, sent.get(e.msg_id.slice(5)));
        assert.equal(e.headers.fedora_messaging_severity, 30);
        assert.equal(typeof e.timestamp, "number");
        assert.equal(typeof e.i, "number");
      }
    } finally {
      subscriber.child.kill();
      await run.stop();
      await ch.exchangeDelete(exchange);
      await admin.close();
    }
  });
});
