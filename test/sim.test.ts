import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { AmqpChannel, AmqpConnection, AmqpDelivery, AmqpReturned, ZmqFrames, ZmqSocketEvent } from "../actors/transport.ts";
import { routeByHost, SimAmqpError, SimBroker, SimBus, simTransports, topicMatches } from "../actors/sim/index.ts";

const URL = "amqp://guest:guest@127.0.0.1:5672/%2F";
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function open(broker: SimBroker, confirm = true): Promise<{ conn: AmqpConnection; ch: AmqpChannel }> {
  const conn = await broker.connect(URL, { name: "test" });
  const ch = await conn.openChannel();
  if (confirm) await ch.confirmSelect();
  return { conn, ch };
}

/** Settles a promise into a value we can assert on, without leaving rejections unhandled. */
function outcome(p: Promise<unknown>): { state: "pending" | "resolved" | "rejected"; error?: Error } {
  const o: { state: "pending" | "resolved" | "rejected"; error?: Error } = { state: "pending" };
  p.then(
    () => (o.state = "resolved"),
    (e: Error) => {
      o.state = "rejected";
      o.error = e;
    },
  );
  return o;
}

describe("topicMatches", () => {
  it("matches exact keys", () => {
    assert.equal(topicMatches("org.fedoraproject.prod.bodhi", "org.fedoraproject.prod.bodhi"), true);
    assert.equal(topicMatches("org.fedoraproject.prod.bodhi", "org.fedoraproject.prod.koji"), false);
    assert.equal(topicMatches("a.b", "a.b.c"), false);
  });
  it("treats * as exactly one word", () => {
    assert.equal(topicMatches("org.*.prod.#", "org.fedoraproject.prod.bodhi.update"), true);
    assert.equal(topicMatches("a.*", "a.b"), true);
    assert.equal(topicMatches("a.*", "a"), false);
    assert.equal(topicMatches("a.*", "a.b.c"), false);
    assert.equal(topicMatches("*", ""), false);
  });
  it("treats # as zero or more words", () => {
    assert.equal(topicMatches("#", ""), true);
    assert.equal(topicMatches("#", "a.b.c"), true);
    assert.equal(topicMatches("a.#", "a"), true);
    assert.equal(topicMatches("a.#", "a.b.c"), true);
    assert.equal(topicMatches("#.c", "a.b.c"), true);
    assert.equal(topicMatches("a.#.c", "a.c"), true);
    assert.equal(topicMatches("a.#.c", "a.b.d"), false);
    assert.equal(topicMatches("a.#.#.c", "a.x.y.c"), true);
  });
});

describe("SimBroker routing and confirms", () => {
  it("routes a topic exchange by * and # bindings, once per queue", async () => {
    const broker = new SimBroker();
    const { ch } = await open(broker);
    await ch.exchangeDeclare("zmq.topic", "topic", true);
    const all = await ch.queueDeclare("all", { durable: true });
    const bodhi = await ch.queueDeclare("bodhi", {});
    await ch.queueBind(all, "zmq.topic", "#");
    await ch.queueBind(all, "amq.topic", "#");
    await ch.queueBind(all, "zmq.topic", "org.#"); // a second matching binding: still one copy
    await ch.queueBind(bodhi, "zmq.topic", "org.fedoraproject.*.bodhi.#");
    await ch.publish("zmq.topic", "org.fedoraproject.prod.bodhi.update.comment", enc("1"), {}, true);
    await ch.publish("zmq.topic", "org.fedoraproject.prod.koji.build", enc("2"), {}, true);
    await ch.publish("amq.topic", "org.fedoraproject.stg.bodhi.update", enc("3"), {}, true);
    assert.deepEqual(broker.queueMessages("all").map((m) => dec(m.body)), ["1", "2", "3"]);
    assert.deepEqual(broker.queueMessages("bodhi").map((m) => dec(m.body)), ["1"]);
    const first = broker.queueMessages("all")[0];
    assert.equal(first.exchange, "zmq.topic");
    assert.equal(first.routingKey, "org.fedoraproject.prod.bodhi.update.comment");
    assert.equal(broker.published, 3);
  });

  it("resolves a confirm-mode publish on ack and keeps properties", async () => {
    const broker = new SimBroker();
    const { ch } = await open(broker);
    await ch.queueDeclare("q", {});
    const properties = { messageId: "2019-abc", deliveryMode: 2, headers: { fedora_messaging_severity: 20 } };
    await ch.publish("", "q", enc("{}"), properties, false);
    properties.headers.fedora_messaging_severity = 40; // the broker took a copy
    assert.equal(broker.confirmed, 1);
    const [m] = broker.queueMessages("q");
    assert.equal(m.properties.messageId, "2019-abc");
    assert.deepEqual(m.properties.headers, { fedora_messaging_severity: 20 });
  });

  it("nacks the next n publishes and does not route them", async () => {
    const broker = new SimBroker();
    const { ch } = await open(broker);
    await ch.queueDeclare("q", {});
    broker.nackNext(2);
    const results = await Promise.allSettled([
      ch.publish("", "q", enc("a"), {}, false),
      ch.publish("", "q", enc("b"), {}, false),
      ch.publish("", "q", enc("c"), {}, false),
    ]);
    assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected", "fulfilled"]);
    assert.match(String((results[0] as PromiseRejectedResult).reason), /nack/);
    assert.deepEqual(broker.queueMessages("q").map((m) => dec(m.body)), ["c"]);
    assert.equal(broker.nacked, 2);
    assert.equal(ch.closed, false);
  });

  it("returns a mandatory publish that no queue takes (312 NO_ROUTE), then acks it", async () => {
    const broker = new SimBroker();
    const { ch } = await open(broker);
    await ch.exchangeDeclare("zmq.topic", "topic", true);
    const order: string[] = [];
    let returned: AmqpReturned | undefined;
    ch.onReturn = (r) => {
      returned = r;
      order.push("return");
    };
    await ch.publish("zmq.topic", "nobody.listens", enc("x"), { messageId: "m1" }, true).then(() => order.push("ack"));
    assert.deepEqual(order, ["return", "ack"]);
    assert.equal(returned?.replyCode, 312);
    assert.equal(returned?.replyText, "NO_ROUTE");
    assert.equal(returned?.exchange, "zmq.topic");
    assert.equal(returned?.routingKey, "nobody.listens");
    assert.equal(returned?.properties.messageId, "m1");
    // Not mandatory: silently dropped, no return.
    await ch.publish("zmq.topic", "nobody.listens", enc("y"), {}, false);
    assert.equal(broker.returned, 1);
  });

  it("holds confirms and releases them in order, some or all", async () => {
    const broker = new SimBroker();
    const { ch } = await open(broker);
    await ch.queueDeclare("q", {});
    broker.holdConfirms();
    const outcomes = [1, 2, 3].map((i) => outcome(ch.publish("", "q", enc(String(i)), {}, false)));
    await broker.idle();
    assert.deepEqual(outcomes.map((o) => o.state), ["pending", "pending", "pending"]);
    assert.equal(broker.heldConfirmCount, 3);
    assert.equal(broker.messageCount("q"), 3, "held confirms do not hold routing");
    assert.equal(broker.releaseConfirms(1), 1);
    await broker.idle();
    assert.deepEqual(outcomes.map((o) => o.state), ["resolved", "pending", "pending"]);
    assert.equal(broker.releaseConfirms(), 2);
    await broker.idle();
    assert.deepEqual(outcomes.map((o) => o.state), ["resolved", "resolved", "resolved"]);
  });
});

describe("SimBroker faults", () => {
  it("closeAllConnections rejects pending confirms and fires onClose on channel and connection", async () => {
    const broker = new SimBroker();
    const { conn, ch } = await open(broker);
    await ch.queueDeclare("q", {});
    const closes: string[] = [];
    let connReason: Error | undefined;
    ch.onClose = () => closes.push("channel");
    conn.onClose = (reason) => {
      connReason = reason;
      closes.push("connection");
    };
    broker.holdConfirms();
    const pending = outcome(ch.publish("", "q", enc("x"), {}, false));
    await broker.idle();
    assert.equal(pending.state, "pending");
    broker.closeAllConnections("test says so");
    await broker.idle();
    assert.equal(pending.state, "rejected");
    assert.match(pending.error?.message ?? "", /CONNECTION_FORCED - test says so \(320\)/);
    assert.deepEqual(closes, ["channel", "connection"]);
    assert.ok(connReason instanceof SimAmqpError);
    assert.equal((connReason as SimAmqpError).code, 320);
    assert.equal(conn.closed, true);
    assert.equal(ch.closed, true);
    assert.equal(broker.connectionCount, 0);
    await assert.rejects(ch.publish("", "q", enc("y"), {}, false), /closed/);
    // The releases of confirms for a closed channel do nothing.
    broker.releaseConfirms();
    await broker.idle();
    assert.equal(broker.confirmed, 0);
  });

  it("holds deliveries beyond prefetch until acks, and requeues unacked ones on close with redelivered", async () => {
    const broker = new SimBroker();
    const { ch: producer } = await open(broker);
    await producer.queueDeclare("work", { durable: true });
    for (let i = 1; i <= 5; i++) await producer.publish("", "work", enc(String(i)), {}, false);

    const { ch } = await open(broker, false);
    await ch.prefetch(2);
    const got: AmqpDelivery[] = [];
    await ch.consume("work", (d) => got.push(d));
    await broker.idle();
    assert.deepEqual(got.map((d) => dec(d.body)), ["1", "2"]);
    assert.equal(broker.unacked("work"), 2);
    assert.equal(broker.messageCount("work"), 3);

    ch.ack(got[0].deliveryTag, false);
    await broker.idle();
    assert.deepEqual(got.map((d) => dec(d.body)), ["1", "2", "3"]);
    assert.equal(got[2].redelivered, false);

    await ch.close();
    assert.equal(broker.unacked("work"), 0);
    const ready = broker.queueMessages("work");
    assert.deepEqual(ready.map((m) => dec(m.body)), ["2", "3", "4", "5"]);
    assert.deepEqual(ready.map((m) => m.redelivered), [true, true, false, false]);

    const { ch: second } = await open(broker, false);
    const again: AmqpDelivery[] = [];
    await second.consume("work", (d) => {
      again.push(d);
      second.ack(d.deliveryTag, false);
    });
    await broker.idle();
    assert.deepEqual(again.map((d) => [dec(d.body), d.redelivered]), [
      ["2", true],
      ["3", true],
      ["4", false],
      ["5", false],
    ]);
    assert.equal(broker.messageCount("work"), 0);
  });

  it("acks multiple and closes the channel with 406 on an unknown delivery tag", async () => {
    const broker = new SimBroker();
    const { ch } = await open(broker, false);
    await ch.queueDeclare("q", {});
    for (let i = 0; i < 3; i++) await ch.publish("", "q", enc(String(i)), {}, false);
    const tags: number[] = [];
    await ch.consume("q", (d) => tags.push(d.deliveryTag));
    await broker.idle();
    ch.ack(tags[1], true);
    assert.equal(broker.unacked("q"), 1);
    let reason: Error | undefined;
    ch.onClose = (r) => (reason = r);
    ch.ack(tags[0], false); // already acked
    await broker.idle();
    assert.equal(ch.closed, true);
    assert.match(reason?.message ?? "", /PRECONDITION_FAILED - unknown delivery tag 1 \(406\)/);
    assert.equal(broker.queueMessages("q").length, 1, "the still-unacked one went back");
  });

  it("dead-letters on reject without requeue when the queue has x-dead-letter-exchange", async () => {
    const broker = new SimBroker();
    const { ch } = await open(broker, false);
    await ch.exchangeDeclare("dlx", "fanout", true);
    await ch.queueDeclare("dead", { durable: true });
    await ch.queueBind("dead", "dlx", "");
    await ch.queueDeclare("in", { durable: true, arguments: { "x-dead-letter-exchange": "dlx" } });
    await ch.queueBind("in", "amq.topic", "#");
    await ch.queueDeclare("plain", {});
    await ch.queueBind("plain", "amq.topic", "#");
    await ch.publish("amq.topic", "org.fedoraproject.prod.x", enc("not json"), { messageId: "m" }, false);
    await ch.consume("in", (d) => ch.reject(d.deliveryTag, false));
    await ch.consume("plain", (d) => ch.reject(d.deliveryTag, false));
    await broker.idle();
    assert.equal(broker.messageCount("in"), 0);
    assert.equal(broker.messageCount("plain"), 0, "no DLX: the message is dropped");
    const [dead] = broker.queueMessages("dead");
    assert.equal(dec(dead.body), "not json");
    assert.equal(dead.exchange, "dlx");
    assert.equal(dead.routingKey, "org.fedoraproject.prod.x");
    assert.equal(dead.properties.messageId, "m");
    const death = (dead.properties.headers?.["x-death"] as Record<string, unknown>[])[0];
    assert.equal(death.reason, "rejected");
    assert.equal(death.queue, "in");
    assert.equal(death.count, 1);
    assert.equal(dead.properties.headers?.["x-first-death-queue"], "in");
  });

  it("requeues on reject with requeue=true, redelivered", async () => {
    const broker = new SimBroker();
    const { ch } = await open(broker, false);
    await ch.queueDeclare("q", {});
    await ch.publish("", "q", enc("x"), {}, false);
    const seen: boolean[] = [];
    await ch.consume("q", (d) => {
      seen.push(d.redelivered);
      if (seen.length === 1) ch.reject(d.deliveryTag, true);
      else ch.ack(d.deliveryTag, false);
    });
    await broker.idle();
    assert.deepEqual(seen, [false, true]);
  });

  it("deletes an exclusive queue when its connection closes and locks it for others", async () => {
    const broker = new SimBroker();
    const { conn, ch } = await open(broker, false);
    const name = await ch.queueDeclare("", { exclusive: true, autoDelete: true });
    assert.match(name, /^amq\.gen-/);
    assert.equal(broker.hasQueue(name), true);
    const { ch: other } = await open(broker, false);
    await assert.rejects(other.consume(name, () => {}), (e: SimAmqpError) => e.code === 405 && /RESOURCE_LOCKED/.test(e.message));
    assert.equal(other.closed, true);
    await conn.close();
    assert.equal(broker.hasQueue(name), false);
  });

  it("refuses connects while stopped; durable queues keep their messages across restart, others are gone", async () => {
    const broker = new SimBroker();
    const { conn, ch } = await open(broker);
    let closedWith: Error | undefined;
    conn.onClose = (r) => (closedWith = r);
    await ch.exchangeDeclare("zmq.topic", "topic", true);
    await ch.exchangeDeclare("scratch", "topic", false);
    await ch.queueDeclare("durable", { durable: true });
    await ch.queueDeclare("transient", {});
    await ch.queueBind("durable", "zmq.topic", "#");
    await ch.queueBind("transient", "zmq.topic", "#");
    await ch.publish("zmq.topic", "a.b", enc("kept"), { deliveryMode: 2 }, false);

    broker.stop();
    await broker.idle();
    assert.match(closedWith?.message ?? "", /shutdown/);
    assert.equal(broker.isDown, true);
    await assert.rejects(broker.connect(URL, {}), (e: Error & { code?: string }) => e.code === "ECONNREFUSED");
    broker.start();

    const { ch: again } = await open(broker);
    assert.equal(broker.hasQueue("transient"), false);
    assert.equal(broker.hasExchange("scratch"), false);
    assert.equal(broker.hasExchange("amq.topic"), true);
    assert.deepEqual(broker.queueMessages("durable").map((m) => dec(m.body)), ["kept"]);
    await again.publish("zmq.topic", "a.c", enc("after"), {}, false);
    assert.deepEqual(broker.queueMessages("durable").map((m) => dec(m.body)), ["kept", "after"], "durable bindings survive");

    // restart() = stop + start
    broker.restart();
    assert.equal(broker.isDown, false);
    assert.equal(broker.messageCount("durable"), 2);
  });

  it("block holds publishes (neither routed nor confirmed) until unblock", async () => {
    const broker = new SimBroker();
    const { conn, ch } = await open(broker);
    await ch.queueDeclare("q", {});
    const events: string[] = [];
    conn.onBlocked = (reason) => events.push(`blocked:${reason}`);
    conn.onUnblocked = () => events.push("unblocked");
    broker.block("low on memory");
    await broker.idle();
    assert.deepEqual(events, ["blocked:low on memory"]);
    const pub = outcome(ch.publish("", "q", enc("x"), {}, false));
    await broker.idle();
    assert.equal(pub.state, "pending");
    assert.equal(broker.messageCount("q"), 0);
    assert.equal(broker.blockedPublishCount, 1);
    broker.unblock();
    await broker.idle();
    assert.deepEqual(events, ["blocked:low on memory", "unblocked"]);
    assert.equal(pub.state, "resolved");
    assert.equal(broker.messageCount("q"), 1);
  });

  it("tells a connection opened during an alarm that it is blocked at its first publish", async () => {
    const broker = new SimBroker();
    broker.block("disk");
    const { conn, ch } = await open(broker);
    let blocked = "";
    conn.onBlocked = (r) => (blocked = r);
    const pub = outcome(ch.publish("amq.topic", "k", enc("x"), {}, false));
    await broker.idle();
    assert.equal(blocked, "disk");
    assert.equal(pub.state, "pending");
    await conn.close();
    await broker.idle();
    assert.equal(pub.state, "rejected", "closing the connection rejects the held publish");
    broker.unblock();
    assert.equal(broker.published, 0);
  });

  it("denyTopic closes the channel with 403 ACCESS_REFUSED naming user, exchange and routing key", async () => {
    const broker = new SimBroker();
    const conn = await broker.connect("amqp://bridge:secret@rabbit.example:5672/%2Fpubsub", {});
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    await ch.exchangeDeclare("zmq.topic", "topic", true);
    broker.denyTopic("bridge", "zmq.topic", "org.fedoraproject.prod.secret.#");
    let reason: Error | undefined;
    ch.onClose = (r) => (reason = r);
    await ch.publish("zmq.topic", "org.fedoraproject.prod.public", enc("ok"), {}, false);
    await assert.rejects(ch.publish("zmq.topic", "org.fedoraproject.prod.secret.key", enc("no"), {}, false), (e: SimAmqpError) => {
      assert.equal(e.code, 403);
      assert.equal(
        e.replyText,
        "ACCESS_REFUSED - write access to topic 'org.fedoraproject.prod.secret.key' in exchange 'zmq.topic' in vhost '/pubsub' refused for user 'bridge'",
      );
      assert.match(e.message, /^channel 1 closed: ACCESS_REFUSED .* \(403\)$/);
      return true;
    });
    await broker.idle();
    assert.equal(ch.closed, true);
    assert.equal(conn.closed, false, "only the channel closes");
    assert.ok(reason instanceof SimAmqpError);
    assert.equal((reason as SimAmqpError).code, 403);
    assert.equal(broker.published, 1);
  });

  it("closes the channel with 404 when publishing to a missing exchange", async () => {
    const broker = new SimBroker();
    const { ch } = await open(broker);
    await assert.rejects(ch.publish("nope", "k", enc("x"), {}, false), /NOT_FOUND - no exchange 'nope' in vhost '\/' \(404\)/);
    assert.equal(ch.closed, true);
  });

  it("rejects bad URLs and bad credentials without echoing the password", async () => {
    const broker = new SimBroker({ users: { guest: "guest" } });
    await assert.rejects(broker.connect("http://u:hunter2@h/", {}), (e: Error) => /amqp:\/\//.test(e.message) && !e.message.includes("hunter2"));
    await assert.rejects(broker.connect("amqp://guest:wrong@h/", {}), /ACCESS_REFUSED - Login was refused/);
    const conn = await broker.connect("amqp://h", { name: "defaults to guest" });
    assert.deepEqual(broker.connectionNames(), ["defaults to guest"]);
    await conn.close();
  });

  it("routes by host when several brokers are simulated", async () => {
    const a = new SimBroker({ name: "a" });
    const b = new SimBroker({ name: "b" });
    const transport = routeByHost({ "a.example:5672": a, "b.example:5672": b });
    await transport.connect("amqp://a.example/%2F", {});
    assert.equal(a.connectionCount, 1);
    assert.equal(b.connectionCount, 0);
    await assert.rejects(transport.connect("amqp://c.example/%2F", {}), /ECONNREFUSED c\.example:5672/);
  });

  it("moves 20,000 confirmed messages through a prefetch-limited consumer", async () => {
    const { broker } = simTransports();
    const { ch } = await open(broker);
    await ch.exchangeDeclare("zmq.topic", "topic", true);
    await ch.queueDeclare("bulk", { durable: true });
    await ch.queueBind("bulk", "zmq.topic", "org.fedoraproject.#");
    const { ch: consumer } = await open(broker, false);
    await consumer.prefetch(100);
    let received = 0;
    await consumer.consume("bulk", (d) => {
      received++;
      consumer.ack(d.deliveryTag, false);
    });
    const started = performance.now();
    const confirms: Promise<void>[] = [];
    for (let i = 0; i < 20_000; i++) {
      confirms.push(ch.publish("zmq.topic", `org.fedoraproject.prod.app${i % 50}.event`, enc(`{"i":${i}}`), {}, true));
    }
    await Promise.all(confirms);
    await broker.idle();
    assert.equal(received, 20_000);
    assert.equal(broker.confirmed, 20_000);
    assert.equal(broker.messageCount("bulk"), 0);
    assert.ok(performance.now() - started < 5_000, "per-message cost stays small");
  });
});

describe("SimBus", () => {
  it("delivers to subscribers by topic prefix, as Uint8Array frames", async () => {
    const bus = new SimBus();
    const pub = await bus.publish("tcp://*:9940", true);
    const bodhi = await bus.subscribe(["tcp://127.0.0.1:9940"], ["org.fedoraproject.prod.bodhi"]);
    const all = await bus.subscribe(["tcp://hub.example:9940"], [""]);
    const none = await bus.subscribe(["tcp://127.0.0.1:9940"], []);
    const got: Record<string, string[]> = { bodhi: [], all: [], none: [] };
    bodhi.onMessage = (f) => got.bodhi.push(dec(f[0]));
    all.onMessage = (f) => {
      assert.ok(f[0] instanceof Uint8Array && f[1] instanceof Uint8Array);
      got.all.push(dec(f[0]));
    };
    none.onMessage = (f) => got.none.push(dec(f[0]));
    await pub.send(["org.fedoraproject.prod.bodhi.update.comment", '{"msg":{}}']);
    await pub.send(["org.fedoraproject.prod.koji.build", enc("{}")]);
    await bus.idle();
    assert.deepEqual(got.bodhi, ["org.fedoraproject.prod.bodhi.update.comment"]);
    assert.deepEqual(got.all, ["org.fedoraproject.prod.bodhi.update.comment", "org.fedoraproject.prod.koji.build"]);
    assert.deepEqual(got.none, [], "no subscription receives nothing, as in ZeroMQ");
    assert.equal(bus.sentCount("tcp://*:9940"), 2);
    assert.equal(bus.deliveredCount, 3);
  });

  it("loses messages sent while no subscriber is connected", async () => {
    const bus = new SimBus();
    const pub = await bus.publish("tcp://*:9941", true);
    await pub.send(["a", "1"]);
    const sub = await bus.subscribe(["tcp://localhost:9941"], [""]);
    const got: string[] = [];
    sub.onMessage = (f) => got.push(dec(f[1]));
    await pub.send(["a", "2"]);
    await bus.idle();
    assert.deepEqual(got, ["2"]);
    assert.equal(bus.unheardCount, 1);
  });

  it("injects raw multipart messages, malformed ones included", async () => {
    const bus = new SimBus();
    const sub = await bus.subscribe(["tcp://127.0.0.1:9940"], ["org."]);
    const got: ZmqFrames[] = [];
    sub.onMessage = (f) => got.push(f);
    bus.sendRaw("tcp://127.0.0.1:9940", [enc("org.x"), enc("a"), enc("b")]);
    bus.sendRaw("tcp://127.0.0.1:9940", [enc("org.y"), new Uint8Array([0xff, 0xfe])]);
    bus.sendRaw("tcp://127.0.0.1:9940", ["org.z"]);
    bus.sendRaw("tcp://127.0.0.1:9940", ["other", "{}"]); // filtered out by prefix
    await bus.idle();
    assert.deepEqual(got.map((f) => f.length), [3, 2, 1]);
    assert.deepEqual([...got[1][1]], [0xff, 0xfe]);
    assert.ok(got.every((f) => f.every((frame) => frame instanceof Uint8Array)));
  });

  it("fires disconnected/connected on disconnect and reconnect, and drops sends in between", async () => {
    const bus = new SimBus();
    const sub = await bus.subscribe(["tcp://127.0.0.1:9940"], [""]);
    const events: ZmqSocketEvent[] = [];
    const got: string[] = [];
    sub.onEvent = (e) => events.push(e);
    sub.onMessage = (f) => got.push(dec(f[1]));
    const pub = await bus.publish("tcp://*:9940", true);
    const pubEvents: string[] = [];
    pub.onEvent = (e) => pubEvents.push(e.type);
    await pub.send(["t", "before"]);
    bus.disconnect("tcp://127.0.0.1:9940");
    await pub.send(["t", "during"]);
    bus.reconnect("tcp://127.0.0.1:9940");
    await pub.send(["t", "after"]);
    await bus.idle();
    assert.deepEqual(events.map((e) => `${e.type} ${e.endpoint}`), [
      "connected tcp://127.0.0.1:9940",
      "disconnected tcp://127.0.0.1:9940",
      "connected tcp://127.0.0.1:9940",
    ]);
    assert.deepEqual(got, ["before", "after"]);
    assert.deepEqual(pubEvents, ["listening"]);
    pub.close();
    await bus.idle();
    assert.equal(events.at(-1)?.type, "disconnected", "closing the only publisher disconnects its subscribers");
    await assert.rejects(pub.send(["t", "x"]), /closed/);
  });

  it("refuses a second bind of the same endpoint", async () => {
    const bus = new SimBus();
    await bus.publish("tcp://*:9940", true);
    await assert.rejects(bus.publish("tcp://0.0.0.0:9940", true), (e: Error & { code?: string }) => e.code === "EADDRINUSE");
    await assert.rejects(bus.subscribe(["9940"], [""]), /not a ZeroMQ endpoint/);
  });
});
