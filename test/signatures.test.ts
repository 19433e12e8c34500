// fedmsg signatures on the bridges (simulated transports): zmq_to_amqp drops
// envelopes that fail validation and forwards the rest; amqp_to_zmq signs what
// it republishes so that fedmsg consumers can validate it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { readFileSync } from "node:fs";
import { flushMicrotasks, simTransports } from "../actors/sim/index.ts";
import { signatureHooks } from "../actors/signatures.ts";
import { createValidator, signEnvelope } from "../lib/fedmsg-crypto.ts";
import { memoryLogger } from "../lib/log.ts";
import { manifestOf, startSystem } from "./support/system.ts";
import type { BridgeStats } from "../lib/stats.ts";

const keys = (name: string) => fileURLToPath(new URL(`./fixtures/signed/fedmsg-test_certs/keys/${name}`, import.meta.url));
const CA = keys("ca.crt");
const KEY = keys("shell-app01.phx2.fedoraproject.org.key");
const CERT = keys("shell-app01.phx2.fedoraproject.org.crt");
const URL_ = "amqp://guest:guest@sim/%2F";
const TOPIC = "org.fedoraproject.prod.shell.ping";

describe("zmq_to_amqp with signature validation", () => {
  it("forwards validly signed envelopes and drops the others as bad_signature", async () => {
    const sim = simTransports();
    const raw = {
      brokers: { main: { url: URL_ } },
      bridges: [
        {
          name: "signed",
          kind: "zmq_to_amqp",
          zmq: { endpoints: ["tcp://127.0.0.1:9940"] },
          amqp: { broker: "main", exchange: "zmq.topic" },
          signatures: { validate: true, ca_cert: CA, routing_policy: { [TOPIC]: ["shell-app01.phx2.fedoraproject.org"] }, routing_nitpicky: true },
        },
      ],
    };
    const logger = memoryLogger();
    const hooks = signatureHooks(manifestOf(raw), logger);
    assert.ok(logger.lines.some((l) => l.includes("signature validation is on")));
    const run = startSystem(raw, sim, { validate: hooks.validate });
    await flushMicrotasks(200);
    const conn = await sim.amqp.connect(URL_, {});
    const ch = await conn.openChannel();
    await ch.queueDeclare("q", { durable: true });
    await ch.queueBind("q", "zmq.topic", "#");
    const pub = await sim.bus.publish("tcp://*:9940", true);
    const material = { keyPem: readFileSync(KEY, "utf8"), certPem: readFileSync(CERT, "utf8") };

    const good = signEnvelope({ topic: TOPIC, msg: { hello: "wörld 🎉", f: 1.5 }, msg_id: "2026-good", timestamp: 1764300000, i: 1, username: "shell" }, material);
    await pub.send([TOPIC, good.body]);
    const tampered = JSON.parse(good.body);
    tampered.msg.hello = "tampered";
    await pub.send([TOPIC, JSON.stringify(tampered)]);
    const wrongTopic = signEnvelope({ topic: "org.fedoraproject.prod.other", msg: {}, msg_id: "2026-other", timestamp: 1, i: 2, username: "shell" }, material);
    await pub.send(["org.fedoraproject.prod.other", wrongTopic.body]);
    const unsigned = JSON.stringify({ topic: TOPIC, msg: {}, msg_id: "2026-unsigned", timestamp: 1, i: 3, username: "shell" });
    await pub.send([TOPIC, unsigned]);
    await flushMicrotasks(300);

    const inQueue = sim.broker.queueMessages("q").map((m) => m.properties.messageId);
    assert.deepEqual(inQueue, ["2026-good"]);
    const stats = (run.ref("zmq_to_amqp:signed").getSnapshot().context as { stats: BridgeStats }).stats;
    assert.equal(stats.dropped.get("bad_signature"), 3);
    assert.ok(run.logger.lines.some((l) => l.includes("dropped (bad_signature)") && l.includes("bad_signature")));
    run.system.stop();
  });
});

describe("amqp_to_zmq with signing", () => {
  it("signs republished envelopes so that they validate against the CA", async () => {
    const sim = simTransports();
    const raw = {
      brokers: { main: { url: URL_ } },
      bridges: [
        {
          name: "signer",
          kind: "amqp_to_zmq",
          zmq: { publish_endpoint: "tcp://127.0.0.1:9950" },
          amqp: { broker: "main", exchange: "amq.topic" },
          signing: { keyfile: KEY, certfile: CERT },
        },
      ],
    };
    const hooks = signatureHooks(manifestOf(raw), memoryLogger());
    const run = startSystem(raw, sim, { encode: hooks.encode });
    const sub = await sim.bus.subscribe(["tcp://127.0.0.1:9950"], [""]);
    const got: string[] = [];
    sub.onMessage = (frames) => void got.push(new TextDecoder().decode(frames[1]));
    await flushMicrotasks(300);
    sim.broker.inject("amq.topic", TOPIC, new TextEncoder().encode(JSON.stringify({ text: "ünïcode 🎉", big: 12345678 })), { messageId: "abc" });
    await flushMicrotasks(300);
    assert.equal(got.length, 1);
    const envelope = JSON.parse(got[0]!);
    assert.equal(envelope.crypto, "x509");
    assert.equal(envelope.username, "amqp-bridge");
    assert.match(envelope.msg_id, /^\d{4}-abc$/);
    const validate = createValidator({ caPem: readFileSync(CA), routingPolicy: { [TOPIC]: ["shell-app01.phx2.fedoraproject.org"] }, routingNitpicky: true });
    assert.deepEqual(validate(got[0]!), { valid: true, signer: "shell-app01.phx2.fedoraproject.org" });
    run.system.stop();
  });
});
