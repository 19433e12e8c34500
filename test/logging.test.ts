// --log-format json: one JSON object per line, with the actor id and its state;
// a repeating error is rate-limited and the suppressed ones are counted.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { AnyActorRef } from "xstate";
import { flushMicrotasks, simTransports } from "../actors/sim/index.ts";
import { runManifest } from "../actors/runtime.ts";
import { createLogger } from "../lib/log.ts";
import { eventually, manifestOf } from "./support/system.ts";

describe("JSON log lines", () => {
  it("carry actor and state, never a password, and rate-limit a repeating error with a count", async () => {
    const lines: string[] = [];
    const logger = createLogger({ format: "json", write: (l) => lines.push(l), intervalMs: 200 });
    const sim = simTransports();
    const manifest = manifestOf({
      brokers: { main: { url: "amqp://fedmsg:s3cret-pw@sim/%2F" } },
      bridges: [{ name: "b", kind: "zmq_to_amqp", zmq: { endpoints: ["tcp://127.0.0.1:9940"] }, amqp: { broker: "main" } }],
    });
    let system: AnyActorRef | undefined;
    const done = runManifest(manifest, { transports: sim, logger, status: "off", signals: false, onStarted: (s) => (system = s) });
    await eventually(() => lines.some((l) => l.includes("connected to")), "the connection line");
    const pub = await sim.bus.publish("tcp://*:9940", true);
    await flushMicrotasks(100);
    for (let i = 0; i < 5; i++) sim.bus.sendRaw("tcp://*:9940", ["org.x", "not json"]);
    await flushMicrotasks(100);
    await new Promise((r) => setTimeout(r, 250));
    sim.bus.sendRaw("tcp://*:9940", ["org.x", "not json"]);
    await flushMicrotasks(100);
    system?.send({ type: "STOP" });
    assert.equal(await done, 0);
    pub.close();

    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const r of records) {
      assert.equal(typeof r.time, "string");
      assert.equal(typeof r.level, "string");
      assert.equal(typeof r.actor, "string");
      assert.equal(typeof r.message, "string");
    }
    const drops = records.filter((r) => String(r.message).startsWith("dropped (not_json)"));
    assert.equal(drops.length, 2, "the first, then one more after the interval");
    assert.equal(drops[0]!.actor, "zmq_to_amqp:b");
    assert.equal(drops[0]!.state, "forwarding");
    assert.equal(drops[1]!.suppressed, 4, "the four in between are counted");
    assert.ok(records.some((r) => r.actor === "amqp:main" && typeof r.state === "string"));
    assert.doesNotMatch(lines.join("\n"), /s3cret-pw/);
  });
});
