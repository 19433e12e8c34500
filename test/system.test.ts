// The root actor on the simulated transports, driven by XState's SimulatedClock:
// supervision with backoff, escalation, and a lost broker connection.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { fromPromise, SimulatedClock } from "xstate";
import { flushMicrotasks, simTransports } from "../actors/sim/index.ts";
import { stateString } from "../lib/status.ts";
import { startSystem } from "./support/system.ts";

const URL_ = "amqp://guest:guest@sim/%2F";

function bridgeManifest(supervision: Record<string, number> = {}) {
  return {
    brokers: { main: { url: URL_ } },
    bridges: [{ name: "b", kind: "zmq_to_amqp", zmq: { endpoints: ["tcp://127.0.0.1:9940"] }, amqp: { broker: "main", exchange: "zmq.topic" } }],
    supervision: { base_delay_ms: 100, max_delay_ms: 1000, max_restarts: 3, window_s: 60, ...supervision },
  };
}

/** A bridge that crashes as soon as it starts, counting its starts. */
function crashing() {
  const starts: number[] = [];
  return { starts, logic: (clock: SimulatedClock) => fromPromise(async () => { starts.push(clock.now()); throw new Error("boom"); }) };
}

async function advance(clock: SimulatedClock, ms: number) {
  clock.increment(ms);
  await flushMicrotasks();
}

describe("supervision", () => {
  it("restarts a crashing child after min(base·2^n, max) with jitter", async () => {
    const clock = new SimulatedClock();
    const crash = crashing();
    const run = startSystem(bridgeManifest({ max_restarts: 10 }), simTransports(), {
      clock,
      random: () => 1, // the top of the jitter range: the delay is exactly the ceiling
      actors: { zmqToAmqp: crash.logic(clock) },
    });
    await flushMicrotasks();
    assert.deepEqual(crash.starts, [0]);
    await advance(clock, 99);
    assert.equal(crash.starts.length, 1, "not before the first backoff (100 ms)");
    await advance(clock, 1);
    assert.deepEqual(crash.starts, [0, 100]);
    await advance(clock, 199);
    assert.equal(crash.starts.length, 2, "the second backoff doubles (200 ms)");
    await advance(clock, 1);
    assert.deepEqual(crash.starts, [0, 100, 300]);
    await advance(clock, 400);
    await advance(clock, 800);
    await advance(clock, 1000);
    assert.deepEqual(crash.starts, [0, 100, 300, 700, 1500, 2500], "capped at max_delay_ms (1000 ms)");
    assert.ok(run.logger.lines.some((l) => l.includes("[zmq_to_amqp:b] crashed: boom; restarting after a backoff")));
    run.system.stop();
  });

  it("jitter keeps each delay within [ceiling/2, ceiling]", async () => {
    const clock = new SimulatedClock();
    const crash = crashing();
    const run = startSystem(bridgeManifest({ max_restarts: 10 }), simTransports(), { clock, random: () => 0, actors: { zmqToAmqp: crash.logic(clock) } });
    await flushMicrotasks();
    await advance(clock, 49);
    assert.equal(crash.starts.length, 1);
    await advance(clock, 1);
    assert.deepEqual(crash.starts, [0, 50]);
    run.system.stop();
  });

  it("escalates when a child crashes more often than the policy allows, and the system ends with the reason", async () => {
    const clock = new SimulatedClock();
    const crash = crashing();
    const run = startSystem(bridgeManifest({ max_restarts: 3 }), simTransports(), { clock, random: () => 1, actors: { zmqToAmqp: crash.logic(clock) } });
    await flushMicrotasks();
    for (const ms of [100, 200, 400]) await advance(clock, ms);
    assert.equal(crash.starts.length, 4);
    const snapshot = run.system.getSnapshot();
    assert.equal(snapshot.status, "done");
    assert.equal(snapshot.value, "failed");
    assert.match(String((snapshot.output as { error?: string }).error), /zmq_to_amqp:b failed 4 times within 60 s \(last: boom\); giving up/);
  });

  it("a connection that gives up after its attempts ends the system non-zero", async () => {
    const clock = new SimulatedClock();
    const sim = simTransports();
    sim.broker.stop();
    const manifest = bridgeManifest();
    (manifest.brokers.main as Record<string, unknown>).max_attempts = 3;
    const run = startSystem(manifest, sim, { clock, random: () => 1 });
    for (let i = 0; i < 10; i++) await advance(clock, 10_000);
    const snapshot = run.system.getSnapshot();
    assert.equal(snapshot.status, "done");
    assert.match(String((snapshot.output as { error?: string }).error), /amqp:main gave up/);
    assert.ok(run.logger.lines.some((l) => l.includes("cannot reach the broker at amqp://guest:***@sim/%2F")), "one clear line, no password");
  });
});

describe("a lost broker connection", () => {
  it("walks connected → reconnecting → connected while the bridge backpressures and resumes, losing nothing", async () => {
    const clock = new SimulatedClock();
    const sim = simTransports();
    const run = startSystem(bridgeManifest(), sim, { clock, random: () => 1 });
    const state = (id: string) => stateString(run.ref(id).getSnapshot().value);
    await flushMicrotasks(200);
    assert.equal(state("amqp:main"), "connected");
    assert.equal(state("zmq_to_amqp:b"), "forwarding");

    const q = "collect";
    const pub = await sim.bus.publish("tcp://*:9940", true);
    const frames = (n: number) => ["org.fedoraproject.test.x", JSON.stringify({ msg: { n }, msg_id: `2026-id-${n}`, username: "t" })] as [string, string];
    // A queue of the test's bound to zmq.topic, through a client of its own.
    const conn = await sim.amqp.connect(URL_, {});
    const ch = await conn.openChannel();
    await ch.queueDeclare(q, { durable: true });
    await ch.queueBind(q, "zmq.topic", "#");

    for (let n = 0; n < 5; n++) await pub.send(frames(n));
    await flushMicrotasks(200);
    assert.equal(sim.broker.messageCount(q), 5);

    sim.broker.stop(); // the broker goes away: connections close, connects are refused
    await flushMicrotasks(200);
    assert.equal(state("amqp:main"), "reconnecting");
    assert.equal(state("zmq_to_amqp:b"), "backpressured");
    for (let n = 5; n < 10; n++) await pub.send(frames(n)); // arrive during the outage
    await flushMicrotasks(200);
    const buffered = (run.ref("zmq_to_amqp:b").getSnapshot().context as { buffer: { size: number } }).buffer.size;
    assert.equal(buffered, 5, "held in the buffer while the broker is away");

    await advance(clock, 10_000); // a retry fails: still down
    assert.notEqual(state("amqp:main"), "connected");
    sim.broker.start();
    for (let i = 0; i < 5 && state("zmq_to_amqp:b") !== "forwarding"; i++) await advance(clock, 10_000);
    assert.equal(state("amqp:main"), "connected");
    assert.equal(state("zmq_to_amqp:b"), "forwarding");
    await flushMicrotasks(200);
    assert.equal(sim.broker.messageCount(q), 10, "every message of the outage arrived after reconnecting");
    const stats = (run.ref("zmq_to_amqp:b").getSnapshot().context as { stats: { reconnects: number } }).stats;
    assert.ok(stats.reconnects >= 1);
    run.system.stop();
  });
});
