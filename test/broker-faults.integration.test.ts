// No loss under real broker faults, driven by rabbitmqctl on the local RabbitMQ:
// connections force-closed, the app stopped and started, a memory alarm, a
// ZeroMQ publisher restarted, and a bridge SIGKILLed during an outage with the
// spool policy. These tests disturb the broker: the test runner runs files one
// at a time, and every test restores the broker even when it fails.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomUUID } from "node:crypto";
import * as zmq from "zeromq";
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { amqpTransport } from "../actors/amqp.ts";
import { zmqTransport } from "../actors/zmq.ts";
import { stateString } from "../lib/status.ts";
import type { BridgeStats } from "../lib/stats.ts";
import { AMQP_URL, cliCommand, eventually, freePort, startSystem, unique } from "./support/system.ts";
import { rabbitmqctl, restoreBroker, sleep } from "./support/broker.ts";

const real = { amqp: amqpTransport, zmq: zmqTransport };
const root = fileURLToPath(new URL("..", import.meta.url));

after(() => restoreBroker());

/** A client of the test's own that reconnects after faults. */
async function withChannel<T>(fn: (ch: AMQPChannel) => Promise<T>, timeout = 60_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const client = new AMQPClient(AMQP_URL);
    try {
      await client.connect();
      const ch = await client.channel();
      return await fn(ch);
    } catch (error) {
      if (Date.now() - start > timeout) throw error;
      await sleep(200);
    } finally {
      await client.close().catch(() => {});
    }
  }
}

/** The message ids sitting in a durable queue, read without consuming them for good. */
async function idsInQueue(queue: string): Promise<string[]> {
  return withChannel(async (ch) => {
    const ids: string[] = [];
    for (;;) {
      const m = await ch.basicGet(queue, { noAck: false });
      if (!m) break;
      ids.push(m.properties.messageId!);
    }
    await ch.basicRecover(true).catch(() => {});
    return ids;
  });
}

async function durableQueueOn(exchange: string, queue: string, bindingKey = "#") {
  await withChannel(async (ch) => {
    await ch.exchangeDeclare(exchange, "topic", { durable: true });
    await ch.queueDeclare(queue, { durable: true });
    await ch.queueBind(queue, exchange, bindingKey);
  });
}

const messagesIn = (queue: string) => withChannel(async (ch) => (await ch.queueDeclare(queue, { passive: true })).messageCount);

async function cleanup(exchange: string, queue: string) {
  await withChannel(async (ch) => {
    await ch.queueDelete(queue).catch(() => {});
    await ch.exchangeDelete(exchange).catch(() => {});
  }).catch(() => {});
}

const envelope = (n: number, id: string) => JSON.stringify({ topic: "org.fedoraproject.test.fault", msg: { n }, msg_id: id, timestamp: 1, i: n, username: "t" });

async function startZmqToAmqp(exchange: string, port: number) {
  const run = startSystem(
    {
      brokers: { main: { url: AMQP_URL } },
      bridges: [{ name: "f", kind: "zmq_to_amqp", zmq: { endpoints: [`tcp://127.0.0.1:${port}`] }, amqp: { broker: "main", exchange } }],
      supervision: { base_delay_ms: 100, max_delay_ms: 2000 },
    },
    real,
  );
  await run.until("zmq_to_amqp:f", "forwarding", 20_000);
  return run;
}

/** Probes until the SUB is subscribed (ZeroMQ's slow joiner); returns how many probes were sent. */
async function awaitSubscribed(pub: zmq.Publisher, run: ReturnType<typeof startSystem>) {
  const stats = () => (run.ref("zmq_to_amqp:f").getSnapshot().context as { stats: BridgeStats }).stats;
  const before = stats().received;
  await eventually(() => {
    void pub.send(["org.fedoraproject.test.probe", envelope(-1, `probe-${randomUUID()}`)]);
    return stats().received > before;
  }, "the subscription", 20_000);
}

describe("zmq_to_amqp on a failing RabbitMQ", () => {
  it("20,000 messages at a steady rate, connections force-closed twice and the app restarted once: every msg_id arrives", async () => {
    const exchange = unique("test.fault.z2a");
    const queue = unique("test.fault.z2a.q");
    await durableQueueOn(exchange, queue);
    const port = freePort();
    const pub = new zmq.Publisher({ sendHighWaterMark: 0 });
    await pub.bind(`tcp://127.0.0.1:${port}`);
    const run = await startZmqToAmqp(exchange, port);
    try {
      await awaitSubscribed(pub, run);
      const N = 20_000;
      const ids = Array.from({ length: N }, (_, n) => `2026-fault-${n}-${randomUUID()}`);
      const faults: Record<number, () => void> = {
        3000: () => rabbitmqctl("close_all_connections", "test: force-closed"),
        7000: () => rabbitmqctl("close_all_connections", "test: force-closed again"),
        11000: () => rabbitmqctl("stop_app"),
        13000: () => rabbitmqctl("start_app"),
      };
      const perBatch = 40; // 2,000 msg/s in batches every 20 ms: 10 s of traffic
      for (let n = 0; n < N; n += perBatch) {
        for (let k = n; k < Math.min(N, n + perBatch); k++) await pub.send(["org.fedoraproject.test.fault", envelope(k, ids[k]!)]);
        const at = (n / perBatch) * 20;
        for (const t of Object.keys(faults).map(Number)) if (at >= t) (faults[t]!(), delete faults[t]);
        await sleep(20);
      }
      for (const t of Object.keys(faults).map(Number)) faults[t]!();
      const stats = () => (run.ref("zmq_to_amqp:f").getSnapshot().context as { stats: BridgeStats }).stats;
      await eventually(() => stats().forwarded >= N && (run.ref("zmq_to_amqp:f").getSnapshot().context as { buffer: { size: number } }).buffer.size === 0, "every message confirmed", 120_000);
      const arrived = await idsInQueue(queue);
      const unique_ = new Set(arrived);
      const missing = ids.filter((id) => !unique_.has(id));
      assert.deepEqual(missing, [], `${missing.length} lost`);
      const duplicates = arrived.filter((id) => !id.startsWith("probe-")).length - N;
      assert.ok(stats().reconnects >= 3, `reconnects=${stats().reconnects}`);
      // Duplicates are possible (republished after a reconnect) and counted, never hidden.
      assert.ok(duplicates <= stats().duplicates, `duplicates in the queue ${duplicates} ≤ counted ${stats().duplicates}`);
      console.log(`# zmq_to_amqp under faults: ${N} sent, all arrived; duplicates in queue=${duplicates}, counted as possible=${stats().duplicates}, reconnects=${stats().reconnects}`);
    } finally {
      restoreBroker();
      await run.stop(30_000).catch(() => run.system.stop());
      pub.close();
      await cleanup(exchange, queue);
    }
  });

  it("a memory alarm of 5 s: the bridge shows its blocked state, loses nothing, and resumes", async () => {
    const exchange = unique("test.fault.alarm");
    const queue = unique("test.fault.alarm.q");
    await durableQueueOn(exchange, queue);
    const port = freePort();
    const pub = new zmq.Publisher({ sendHighWaterMark: 0 });
    await pub.bind(`tcp://127.0.0.1:${port}`);
    const run = await startZmqToAmqp(exchange, port);
    const state = (id: string) => stateString(run.ref(id).getSnapshot().value);
    try {
      await awaitSubscribed(pub, run);
      const ids = Array.from({ length: 2000 }, (_, n) => `2026-alarm-${n}-${randomUUID()}`);
      for (let n = 0; n < 500; n++) await pub.send(["org.fedoraproject.test.fault", envelope(n, ids[n]!)]);
      rabbitmqctl("set_vm_memory_high_watermark", "0.0000001");
      for (let n = 500; n < 1000; n++) await pub.send(["org.fedoraproject.test.fault", envelope(n, ids[n]!)]);
      await eventually(() => state("amqp:main") === "blocked", "connection.blocked", 20_000);
      assert.equal(state("zmq_to_amqp:f"), "backpressured");
      assert.equal(state("amqp:main:1"), "open.blocked");
      for (let n = 1000; n < 2000; n++) await pub.send(["org.fedoraproject.test.fault", envelope(n, ids[n]!)]);
      await sleep(5000);
      assert.equal(state("amqp:main"), "blocked", "still blocked while the alarm lasts");
      rabbitmqctl("set_vm_memory_high_watermark", "0.4");
      await eventually(() => state("amqp:main") === "connected" && state("zmq_to_amqp:f") === "forwarding", "unblocked", 20_000);
      const stats = () => (run.ref("zmq_to_amqp:f").getSnapshot().context as { stats: BridgeStats }).stats;
      await eventually(() => stats().forwarded >= 2000, "all confirmed", 30_000);
      const arrived = new Set(await idsInQueue(queue));
      assert.deepEqual(ids.filter((id) => !arrived.has(id)), []);
    } finally {
      restoreBroker();
      await run.stop().catch(() => run.system.stop());
      pub.close();
      await cleanup(exchange, queue);
    }
  });

  // Under Deno, zeromq.js's SUB reports the reconnect but receives nothing more afterwards
  // (found by this test; see the closing note): a known limitation, not hidden.
  const underDeno = "Deno" in globalThis;
  it("a ZeroMQ publisher restarted mid-stream: the SUB reconnects and what is published after arrives", { skip: underDeno ? "zeromq.js under Deno does not resume receiving after the publisher restarts" : false }, async () => {
    const exchange = unique("test.fault.pubrestart");
    const queue = unique("test.fault.pubrestart.q");
    await durableQueueOn(exchange, queue, "org.fedoraproject.test.fault"); // not the probes
    const port = freePort();
    let pub = new zmq.Publisher({ sendHighWaterMark: 0, linger: 0 });
    await pub.bind(`tcp://127.0.0.1:${port}`);
    const run = await startZmqToAmqp(exchange, port);
    const state = () => stateString(run.ref("zmq:f").getSnapshot().value);
    try {
      await awaitSubscribed(pub, run);
      const before = Array.from({ length: 500 }, (_, n) => `2026-before-${n}-${randomUUID()}`);
      for (const [n, id] of before.entries()) await pub.send(["org.fedoraproject.test.fault", envelope(n, id)]);
      // What the publisher sent must have crossed before it goes away (ZeroMQ drops a closed socket's queue).
      let held = 0;
      let asking = false;
      await eventually(() => {
        if (!asking) {
          asking = true;
          void messagesIn(queue).then((n) => (held = n), () => {}).finally(() => (asking = false));
        }
        return held >= before.length;
      }, "the first half in the queue", 30_000);
      pub.close();
      await eventually(() => state() === "live.reconnecting", "the SUB to see the publisher gone", 10_000);
      pub = new zmq.Publisher({ sendHighWaterMark: 0, linger: 0 });
      await pub.bind(`tcp://127.0.0.1:${port}`);
      await eventually(() => state() === "live.connected", "the SUB to reconnect", 10_000);
      await awaitSubscribed(pub, run);
      const afterIds = Array.from({ length: 500 }, (_, n) => `2026-after-${n}-${randomUUID()}`);
      for (const [n, id] of afterIds.entries()) await pub.send(["org.fedoraproject.test.fault", envelope(n, id)]);
      const stats = () => (run.ref("zmq_to_amqp:f").getSnapshot().context as { stats: BridgeStats }).stats;
      await eventually(() => stats().forwarded >= 1000, "both halves confirmed", 30_000);
      const arrived = new Set(await idsInQueue(queue));
      assert.deepEqual([...before, ...afterIds].filter((id) => !arrived.has(id)), []);
    } finally {
      await run.stop().catch(() => run.system.stop());
      pub.close();
      await cleanup(exchange, queue);
    }
  });

  it("a bridge SIGKILLed during a broker outage, with the spool policy, loses nothing after it restarts", async () => {
    const exchange = unique("test.fault.spool");
    const queue = unique("test.fault.spool.q");
    await durableQueueOn(exchange, queue);
    const dir = mkdtempSync(join(tmpdir(), "spool-"));
    const port = freePort();
    const manifest = join(dir, "manifest.json");
    writeFileSync(
      manifest,
      JSON.stringify({
        brokers: { main: { url: AMQP_URL } },
        bridges: [{ name: "s", kind: "zmq_to_amqp", zmq: { endpoints: [`tcp://127.0.0.1:${port}`] }, amqp: { broker: "main", exchange }, buffer: { overflow: "spool", spool_dir: dir } }],
      }),
    );
    const start = () => {
      const [command, args] = cliCommand(["run", "--manifest", manifest]);
      const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
      let err = "";
      child.stderr.on("data", (d) => (err += d));
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      return { child, err: () => err, exited };
    };
    const pub = new zmq.Publisher({ sendHighWaterMark: 0 });
    await pub.bind(`tcp://127.0.0.1:${port}`);
    let first = start();
    let second: ReturnType<typeof start> | undefined;
    try {
      await eventually(() => first.err().includes("connected to"), "the first bridge to connect", 30_000);
      // Probe until a message is confirmed into the queue: the subscription is live.
      await eventually(() => {
        void pub.send(["org.fedoraproject.test.probe", envelope(-1, `probe-${randomUUID()}`)]);
        return first.err().includes("connected to") && existsSync(join(dir, "zmq_to_amqp_s.spool.jsonl"));
      }, "the bridge's spool", 30_000);
      await sleep(1000);
      rabbitmqctl("stop_app");
      await eventually(() => first.err().includes("connection lost") || first.err().includes("channel closed"), "the bridge to see the outage", 30_000);
      const ids = Array.from({ length: 1000 }, (_, n) => `2026-spool-${n}-${randomUUID()}`);
      for (const [n, id] of ids.entries()) await pub.send(["org.fedoraproject.test.fault", envelope(n, id)]);
      const spoolFile = join(dir, "zmq_to_amqp_s.spool.jsonl");
      await eventually(() => readFileSync(spoolFile, "utf8").split("\n").filter((l) => l.includes("2026-spool-")).length >= 1000, "the outage's messages on disk", 30_000);
      assert.equal(first.child.exitCode, null, `the first bridge died on its own:\n${first.err()}`);
      first.child.kill("SIGKILL");
      await first.exited;
      rabbitmqctl("start_app");
      second = start();
      await eventually(() => second!.err().includes("spool replayed and confirmed"), "the replay", 60_000);
      const arrived = new Set(await idsInQueue(queue));
      assert.deepEqual(ids.filter((id) => !arrived.has(id)), []);
    } finally {
      restoreBroker();
      for (const p of [first, second]) if (p && p.child.exitCode === null) p.child.kill("SIGKILL");
      pub.close();
      rmSync(dir, { recursive: true, force: true });
      await cleanup(exchange, queue);
    }
  });
});

describe("amqp_to_zmq on a failing RabbitMQ", () => {
  it("20,000 messages through a durable named queue, connections force-closed twice and the app restarted once: every message reaches the subscriber", async () => {
    const exchange = unique("test.fault.a2z");
    const queue = unique("test.fault.a2z.q");
    await withChannel((ch) => ch.exchangeDeclare(exchange, "topic", { durable: true }).then(() => undefined));
    const port = freePort();
    const run = startSystem(
      {
        brokers: { main: { url: AMQP_URL } },
        bridges: [{ name: "o", kind: "amqp_to_zmq", zmq: { publish_endpoint: `tcp://127.0.0.1:${port}` }, amqp: { broker: "main", exchange, queue, prefetch: 200 } }],
        supervision: { base_delay_ms: 100, max_delay_ms: 2000 },
      },
      real,
    );
    const sub = new zmq.Subscriber({ receiveHighWaterMark: 0 });
    sub.connect(`tcp://127.0.0.1:${port}`);
    sub.subscribe("org.fedoraproject.test.");
    const got = new Set<string>();
    let received = 0;
    void (async () => {
      for await (const [, body] of sub) {
        received++;
        got.add(JSON.parse(body!.toString()).msg.id);
      }
    })().catch(() => {});
    try {
      await run.until("amqp_to_zmq:o", "forwarding", 20_000);
      await eventually(() => {
        void withChannel((ch) => ch.basicPublish(exchange, "org.fedoraproject.test.probe", JSON.stringify({ id: "probe" }), { messageId: randomUUID() }).then(() => undefined));
        return got.has("probe");
      }, "the subscription", 20_000);
      const N = 20_000;
      const ids = Array.from({ length: N }, (_, n) => `m${n}-${randomUUID()}`);
      // A publisher of the test's own, with confirms, retrying across the faults.
      let next = 0;
      const faults: [number, () => void][] = [
        [4000, () => rabbitmqctl("close_all_connections", "test")],
        [8000, () => rabbitmqctl("close_all_connections", "test again")],
        [12000, () => rabbitmqctl("stop_app")],
        [14000, () => rabbitmqctl("start_app")],
      ];
      // Through this project's own AMQP transport: its confirm tracking leaves no
      // promise unhandled when a write fails under a reset (the raw client's does).
      const encoder = new TextEncoder();
      const publishing = (async () => {
        while (next < N) {
          try {
            const connection = await amqpTransport.connect(AMQP_URL, {});
            try {
              const ch = await connection.openChannel();
              await ch.confirmSelect();
              while (next < N) {
                const batch = ids.slice(next, next + 50);
                await Promise.all(batch.map((id) => ch.publish(exchange, "org.fedoraproject.test.a2z", encoder.encode(JSON.stringify({ id })), { messageId: id, deliveryMode: 2, contentType: "application/json" }, false)));
                next += batch.length;
                await sleep(25);
              }
            } finally {
              await connection.close().catch(() => {});
            }
          } catch {
            await sleep(200); // the broker is away: try again, from the first unconfirmed batch
          }
        }
      })();
      const started = Date.now();
      for (const [at, fault] of faults) {
        await sleep(Math.max(0, at - (Date.now() - started)));
        fault();
      }
      await publishing;
      await eventually(() => ids.every((id) => got.has(id)), "every message on ZeroMQ", 120_000);
      const stats = (run.ref("amqp_to_zmq:o").getSnapshot().context as { stats: BridgeStats }).stats;
      console.log(`# amqp_to_zmq under faults: ${N} published, all received; frames received=${received}, redelivered counted=${stats.duplicates}, reconnects=${stats.reconnects}`);
      assert.ok(stats.reconnects >= 3);
    } finally {
      restoreBroker();
      await run.stop(30_000).catch(() => run.system.stop());
      sub.close();
      await cleanup(exchange, queue);
    }
  });
});
