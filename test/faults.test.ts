// Deterministic failure scenarios on the simulated broker and bus (SimulatedClock):
// nacks, returns, the alternate exchange, connection.blocked, 403 refusals,
// overflow (drop-newest and spool), poison messages and redelivery.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SimulatedClock } from "xstate";
import { flushMicrotasks, simTransports, SimBroker } from "../actors/sim/index.ts";
import type { AmqpChannel, ZmqPublisher } from "../actors/transport.ts";
import { stateString } from "../lib/status.ts";
import type { BridgeStats } from "../lib/stats.ts";
import type { PublishBuffer } from "../lib/publish-buffer.ts";
import { startSystem } from "./support/system.ts";

const URL_ = "amqp://guest:guest@sim/%2F";
const EP = "tcp://127.0.0.1:9940";

function zmqBridge(extra: Record<string, unknown> = {}, amqp: Record<string, unknown> = {}) {
  return {
    brokers: { main: { url: URL_ } },
    bridges: [{ name: "b", kind: "zmq_to_amqp", zmq: { endpoints: [EP] }, amqp: { broker: "main", exchange: "zmq.topic", ...amqp }, ...extra }],
    supervision: { base_delay_ms: 100, max_delay_ms: 1000 },
  };
}

const frames = (n: number, topic = "org.fedoraproject.test.x"): [string, string] => [topic, JSON.stringify({ topic, msg: { n }, msg_id: `2026-m${n}`, username: "t" })];

async function setUp(raw: Record<string, unknown>, broker = new SimBroker()) {
  const clock = new SimulatedClock();
  const sim = simTransports(broker);
  const run = startSystem(raw, sim, { clock, random: () => 1 });
  await flushMicrotasks(200);
  const client = await sim.amqp.connect(URL_, {});
  const ch = await client.openChannel();
  const pub = await sim.bus.publish("tcp://*:9940", true);
  const bridge = () => run.ref("zmq_to_amqp:b").getSnapshot().context as { stats: BridgeStats; buffer: PublishBuffer };
  const advance = async (ms: number) => {
    clock.increment(ms);
    await flushMicrotasks(200);
  };
  return { clock, sim, run, ch, pub, bridge, advance, state: (id: string) => stateString(run.ref(id).getSnapshot().value) };
}

async function bindQueue(ch: AmqpChannel, q: string, exchange = "zmq.topic", key = "#") {
  await ch.queueDeclare(q, { durable: true });
  await ch.queueBind(q, exchange, key);
}

async function sendAll(pub: ZmqPublisher, from: number, to: number, topic?: string) {
  for (let n = from; n < to; n++) await pub.send(frames(n, topic));
  await flushMicrotasks(200);
}

const ids = (broker: SimBroker, q: string) => broker.queueMessages(q).map((m) => m.properties.messageId);

describe("zmq_to_amqp under faults (simulated)", () => {
  it("a nacked publish is retried after a backoff, and counted as a possible duplicate", async () => {
    const t = await setUp(zmqBridge());
    await bindQueue(t.ch, "q");
    t.sim.broker.nackNext(2);
    await sendAll(t.pub, 0, 5);
    assert.equal(t.state("amqp:main:1"), "open.retrying");
    assert.ok(t.bridge().stats.duplicates >= 2);
    await t.advance(1000);
    assert.deepEqual(new Set(ids(t.sim.broker, "q")), new Set([0, 1, 2, 3, 4].map((n) => `2026-m${n}`)));
    assert.equal(t.state("amqp:main:1"), "open.ready");
    t.run.system.stop();
  });

  it("an unroutable (mandatory) publish is counted and logged as returned", async () => {
    const t = await setUp(zmqBridge());
    await sendAll(t.pub, 0, 3);
    assert.equal(t.bridge().stats.returned, 3);
    assert.equal(t.bridge().stats.forwarded, 3, "a returned message is still confirmed by the broker");
    assert.ok(t.run.logger.lines.some((l) => l.includes("unroutable: no queue is bound for routing key org.fedoraproject.test.x on zmq.topic")));
    t.run.system.stop();
  });

  it("with an alternate exchange, unroutable messages go there instead of being returned", async () => {
    const t = await setUp(zmqBridge({}, { alternate_exchange: "zmq.unroutable" }));
    await bindQueue(t.ch, "unroutable", "zmq.unroutable");
    await sendAll(t.pub, 0, 3);
    assert.equal(t.bridge().stats.returned, 0);
    assert.deepEqual(ids(t.sim.broker, "unroutable"), ["2026-m0", "2026-m1", "2026-m2"]);
    t.run.system.stop();
  });

  it("connection.blocked pauses publishing in an explicit state until unblocked, losing nothing", async () => {
    const t = await setUp(zmqBridge());
    await bindQueue(t.ch, "q");
    await sendAll(t.pub, 0, 2);
    t.sim.broker.block("memory alarm");
    await sendAll(t.pub, 2, 3); // the first publish under the alarm is when RabbitMQ says blocked
    assert.equal(t.state("amqp:main"), "blocked");
    assert.equal(t.state("amqp:main:1"), "open.blocked");
    assert.equal(t.state("zmq_to_amqp:b"), "backpressured");
    await sendAll(t.pub, 3, 10);
    assert.ok(t.bridge().buffer.size >= 7, "held in the buffer while blocked");
    t.sim.broker.unblock();
    await flushMicrotasks(300);
    assert.equal(t.state("amqp:main"), "connected");
    assert.equal(t.state("zmq_to_amqp:b"), "forwarding");
    assert.deepEqual(new Set(ids(t.sim.broker, "q")), new Set(Array.from({ length: 10 }, (_, n) => `2026-m${n}`)));
    t.run.system.stop();
  });

  it("a 403 on one topic (keep): reported with user, exchange and routing key; held and retried; every other message flows", async () => {
    const t = await setUp(zmqBridge());
    await bindQueue(t.ch, "q");
    t.sim.broker.denyTopic("guest", "zmq.topic", "org.fedoraproject.secret.#");
    for (let n = 0; n < 20; n++) await t.pub.send(frames(n, n % 5 === 0 ? "org.fedoraproject.secret.x" : "org.fedoraproject.test.x"));
    await flushMicrotasks(300);
    for (let i = 0; i < 10; i++) await t.advance(100); // each refusal closes the channel; it reopens after a backoff
    const arrived = new Set(ids(t.sim.broker, "q"));
    const others = Array.from({ length: 20 }, (_, n) => n).filter((n) => n % 5 !== 0);
    assert.deepEqual(arrived, new Set(others.map((n) => `2026-m${n}`)));
    assert.ok(t.bridge().stats.refused >= 4, "each refusal is counted (held ones are retried, and refused again)");
    assert.ok(t.run.logger.lines.some((l) => l.includes("refused to let user guest publish to exchange zmq.topic with routing key org.fedoraproject.secret.x (403 ACCESS_REFUSED)")));
    // Permission granted: the held messages get through at the next retry.
    t.sim.broker.clearTopicDenials();
    for (let i = 0; i < 20; i++) await t.advance(100);
    assert.deepEqual(new Set(ids(t.sim.broker, "q")), new Set(Array.from({ length: 20 }, (_, n) => `2026-m${n}`)));
    t.run.system.stop();
  });

  it("a 403 with on_refused dead-letter sends the refused messages to the dead-letter exchange", async () => {
    const broker = new SimBroker();
    const t = await setUp(zmqBridge({}, { on_refused: "dead-letter", dead_letter_exchange: "zmq.refused" }), broker);
    await t.ch.exchangeDeclare("zmq.refused", "fanout", true);
    await bindQueue(t.ch, "q");
    await bindQueue(t.ch, "refused", "zmq.refused");
    broker.denyTopic("guest", "zmq.topic", "org.fedoraproject.secret.#");
    await t.pub.send(frames(1, "org.fedoraproject.secret.x"));
    await t.pub.send(frames(2));
    await flushMicrotasks(300);
    await t.advance(500);
    assert.deepEqual(ids(broker, "refused"), ["2026-m1"]);
    assert.equal(broker.queueMessages("refused")[0]!.properties.headers!["x-refused-user"], "guest");
    assert.deepEqual(ids(broker, "q"), ["2026-m2"]);
    t.run.system.stop();
  });

  it("a full buffer under drop-newest counts every overflow by reason", async () => {
    const t = await setUp(zmqBridge({ buffer: { max_messages: 5 } }));
    await bindQueue(t.ch, "q");
    t.sim.broker.stop();
    await sendAll(t.pub, 0, 12);
    assert.equal(t.bridge().stats.dropped.get("overflow"), 7);
    assert.equal(t.bridge().buffer.size, 5);
    t.run.system.stop();
  });

  it("spool: messages of a broker outage go to disk and are replayed, even by a new process", async () => {
    const dir = mkdtempSync(join(tmpdir(), "spool-"));
    try {
      const raw = zmqBridge({ buffer: { max_messages: 10, overflow: "spool", spool_dir: dir } });
      const broker = new SimBroker();
      const t = await setUp(raw, broker);
      await bindQueue(t.ch, "q");
      await sendAll(t.pub, 0, 3);
      assert.equal(broker.messageCount("q"), 3);
      broker.stop();
      await flushMicrotasks(200);
      await sendAll(t.pub, 3, 40); // far more than the buffer holds
      assert.equal(t.bridge().buffer.size, 0, "nothing held only in memory during the outage");
      const file = join(dir, "zmq_to_amqp_b.spool.jsonl");
      assert.equal(readFileSync(file, "utf8").trim().split("\n").length, 37);
      assert.equal(t.bridge().stats.dropped.get("overflow") ?? 0, 0);
      // The process dies (its actors vanish without draining); a new one starts with the broker back.
      t.run.system.stop();
      broker.start();
      const again = await setUp(raw, broker);
      for (let i = 0; i < 10; i++) await again.advance(100);
      assert.deepEqual(new Set(ids(broker, "q")), new Set(Array.from({ length: 40 }, (_, n) => `2026-m${n}`)));
      assert.equal(readFileSync(file, "utf8"), "", "the spool is emptied once everything was confirmed");
      again.run.system.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("amqp_to_zmq under faults (simulated)", () => {
  function outBridge(queue = "to-zmq", extra: Record<string, unknown> = {}) {
    return {
      brokers: { main: { url: URL_ } },
      bridges: [{ name: "o", kind: "amqp_to_zmq", zmq: { publish_endpoint: "tcp://127.0.0.1:9950" }, amqp: { broker: "main", exchange: "amq.topic", queue, ...extra } }],
      supervision: { base_delay_ms: 100, max_delay_ms: 1000 },
    };
  }

  it("poison messages are rejected without requeue and dead-lettered; good ones cross", async () => {
    const broker = new SimBroker();
    const clock = new SimulatedClock();
    const sim = simTransports(broker);
    const setupClient = await (await sim.amqp.connect(URL_, {})).openChannel();
    await setupClient.exchangeDeclare("dlx", "fanout", true);
    await bindQueue(setupClient, "dead", "dlx");
    const run = startSystem(outBridge("to-zmq", { dead_letter_exchange: "dlx" }), sim, { clock });
    const sub = await sim.bus.subscribe(["tcp://127.0.0.1:9950"], [""]);
    const got: string[] = [];
    sub.onMessage = (f) => void got.push(new TextDecoder().decode(f[0]));
    await flushMicrotasks(300);
    broker.inject("amq.topic", "t.no-id", "{}", {});
    broker.inject("amq.topic", "t.not-json", "{", { messageId: "a" });
    broker.inject("amq.topic", "t.array", "[1]", { messageId: "b" });
    broker.inject("amq.topic", "t.good", '{"ok":true}', { messageId: "c" });
    await flushMicrotasks(300);
    assert.deepEqual(got, ["t.good"]);
    assert.equal(broker.messageCount("dead"), 3);
    assert.equal(broker.messageCount("to-zmq"), 0, "nothing requeued: no hot loop");
    const stats = (run.ref("amqp_to_zmq:o").getSnapshot().context as { stats: BridgeStats }).stats;
    assert.deepEqual(Object.fromEntries(stats.dropped), { no_message_id: 1, not_json: 1, not_object: 1 });
    run.system.stop();
  });

  it("after a reconnect the topology is declared again and consuming resumes; nothing in the durable queue is lost", async () => {
    const broker = new SimBroker();
    const clock = new SimulatedClock();
    const sim = simTransports(broker);
    const run = startSystem(outBridge(), sim, { clock, random: () => 1 });
    const sub = await sim.bus.subscribe(["tcp://127.0.0.1:9950"], [""]);
    const got = new Set<string>();
    sub.onMessage = (f) => void got.add(JSON.parse(new TextDecoder().decode(f[1])).msg.n);
    await flushMicrotasks(300);
    for (let n = 0; n < 5; n++) broker.inject("amq.topic", "t", JSON.stringify({ n }), { messageId: `id${n}` });
    await flushMicrotasks(300);
    broker.restart(); // connections close, the durable queue keeps what it holds
    for (let n = 5; n < 10; n++) broker.inject("amq.topic", "t", JSON.stringify({ n }), { messageId: `id${n}` });
    for (let i = 0; i < 5; i++) {
      clock.increment(1000);
      await flushMicrotasks(300);
    }
    assert.equal(stateString(run.ref("amqp_to_zmq:o").getSnapshot().value), "forwarding");
    assert.deepEqual(got, new Set(Array.from({ length: 10 }, (_, n) => n)));
    assert.equal(broker.messageCount("to-zmq"), 0);
    run.system.stop();
  });
});
