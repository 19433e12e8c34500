// verify_missing on the local RabbitMQ and a real ZeroMQ PUB: a lossy path
// withholds known messages and the verifier reports exactly those.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import * as zmq from "zeromq";
import { amqpTransport } from "../actors/amqp.ts";
import { zmqTransport } from "../actors/zmq.ts";
import type { VerifierFinding } from "../lib/verifier-tracker.ts";
import { AMQP_URL, eventually, freePort, startSystem, unique, testChannel } from "./support/system.ts";

const amqp = testChannel();

describe("verify_missing on RabbitMQ", () => {
  it("1,000 messages a side, 17 withheld from AMQP and 9 from ZeroMQ: exactly those 26 reported, and one altered body", async () => {
    const zmqTopic = unique("test.vzmq");
    const amqTopic = unique("test.vamq");
    for (const x of [zmqTopic, amqTopic]) await amqp.ch.exchangeDeclare(x, "topic", { durable: true });
    const port = freePort();
    const pub = new zmq.Publisher({ sendHighWaterMark: 0 });
    await pub.bind(`tcp://127.0.0.1:${port}`);
    const findings: VerifierFinding[] = [];
    const windowS = 2;
    const checkS = 1;
    const run = startSystem(
      {
        brokers: { main: { url: AMQP_URL } },
        verifiers: [
          {
            name: "v",
            zmq: { endpoints: [`tcp://127.0.0.1:${port}`] },
            amqp: { broker: "main", exchanges: [zmqTopic, amqTopic], queue: unique("verify") },
            window: windowS,
            match_interval: 0.2,
            check_interval: checkS,
          },
        ],
      },
      { amqp: amqpTransport, zmq: zmqTransport },
      { report: { v: (f) => void findings.push(f) } },
    );
    const send = async (side: "zmq" | "amqp", id: string, topic: string, msg: unknown, exchange: string) => {
      if (side === "zmq") await pub.send([topic, JSON.stringify({ topic, msg, msg_id: id, timestamp: 1, i: 1, username: "t" })]);
      else await amqp.ch.basicPublish(exchange, topic, JSON.stringify(msg), { messageId: id, contentType: "application/json" });
    };
    const matched = () => {
      const core = (run.ref("verify:v").getSnapshot() as { children: { core?: { getSnapshot(): { context: { tracker: { summary(): { matched: number } } } } } } }).children.core;
      return core?.getSnapshot().context.tracker.summary().matched ?? 0;
    };
    try {
      await run.until("verify:v", "collecting");
      // Slow joiner: probe pairs until one is matched on both sides.
      await eventually(() => {
        const id = `2026-probe-${randomUUID()}`;
        void send("zmq", id, "org.fedoraproject.test.probe", { p: 1 }, zmqTopic);
        void send("amqp", id, "org.fedoraproject.test.probe", { p: 1 }, zmqTopic);
        return matched() > 0;
      }, "a probe pair to match");
      await new Promise((r) => setTimeout(r, (windowS + checkS + 0.5) * 1000)); // let unmatched probes age out
      findings.length = 0;

      const withheldFromAmqp = new Set<number>();
      const withheldFromZmq = new Set<number>();
      while (withheldFromAmqp.size < 17) withheldFromAmqp.add(Math.floor(Math.random() * 1000));
      while (withheldFromZmq.size < 9) {
        const n = Math.floor(Math.random() * 1000);
        if (!withheldFromAmqp.has(n)) withheldFromZmq.add(n);
      }
      let altered = Math.floor(Math.random() * 1000);
      while (withheldFromAmqp.has(altered) || withheldFromZmq.has(altered)) altered = (altered + 1) % 1000;
      const ids: string[] = [];
      for (let n = 0; n < 1000; n++) {
        const uuid = randomUUID();
        ids.push(uuid);
        const topic = `org.fedoraproject.test.v${n % 7}`;
        const msg = { n, body: "ü ✓" };
        // Half the messages born on ZeroMQ (msg_id "2026-<uuid>", kept as message_id), half on AMQP (bare uuid, prefixed on ZeroMQ).
        const zmqId = `2026-${uuid}`;
        const amqpId = n % 2 ? zmqId : uuid;
        const exchange = n % 2 ? zmqTopic : amqTopic;
        if (!withheldFromZmq.has(n)) await send("zmq", zmqId, topic, msg, exchange);
        if (!withheldFromAmqp.has(n)) await send("amqp", amqpId, topic, n === altered ? { ...msg, body: "changed" } : msg, exchange);
      }
      const missing = () => findings.filter((f) => f.kind === "missing");
      await eventually(() => missing().length >= 26, "26 missing reports", (windowS + checkS) * 1000 + 5000);
      await new Promise((r) => setTimeout(r, (checkS + 0.5) * 1000)); // one more check: nothing else comes
      const report = missing() as Extract<VerifierFinding, { kind: "missing" }>[];
      assert.equal(report.length, 26);
      const onlyZmq = new Set(report.filter((f) => f.seenOn === "zmq").map((f) => f.id));
      const onlyAmqp = new Set(report.filter((f) => f.seenOn === "amqp").map((f) => f.id));
      assert.deepEqual(onlyZmq, new Set([...withheldFromAmqp].map((n) => ids[n])));
      assert.deepEqual(onlyAmqp, new Set([...withheldFromZmq].map((n) => ids[n])));
      const mismatches = findings.filter((f) => f.kind === "mismatch");
      assert.equal(mismatches.length, 1);
      assert.equal(mismatches[0]!.id, ids[altered]);
      assert.ok(run.logger.lines.some((l) => l.includes(`Message ${[...withheldFromAmqp].map((n) => ids[n])[0]} was only received in ZeroMQ (at `)));
      assert.ok(run.logger.lines.some((l) => l.includes("mismatch") && l.includes(ids[altered]!)));
    } finally {
      await run.stop();
      pub.close();
      for (const x of [zmqTopic, amqTopic]) await amqp.ch.exchangeDelete(x);
    }
  });
});
