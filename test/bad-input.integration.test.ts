// The bad-input corpus: a running zmq_to_amqp process (the CLI, a child process)
// is fed 30 kinds of malformed frames interleaved with good messages, on real
// ZeroMQ and RabbitMQ. Every good message arrives, every bad one is counted by
// its reason, and the process keeps running until asked to stop.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import * as zmq from "zeromq";
import type { AMQPMessage } from "@cloudamqp/amqp-client";
import { AMQP_URL, collect, cliCommand, eventually, freePort, spawnCaptured, unique, testChannel } from "./support/system.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const env = (extra: Record<string, unknown>) => JSON.stringify({ topic: "t", msg: { ok: 1 }, msg_id: "2026-x", username: "u", ...extra });
const deep = (n: number) => "[".repeat(n) + "]".repeat(n);

/** [what, frames, expected drop reason] */
const CORPUS: [string, (string | Uint8Array)[], string][] = [
  ["one frame", ["org.x"], "frame_count"],
  ["three frames", ["org.x", env({}), "extra"], "frame_count"],
  ["four empty frames", ["", "", "", ""], "frame_count"],
  ["empty topic and body", ["", ""], "not_json"],
  ["empty body", ["org.x", ""], "not_json"],
  ["invalid UTF-8 body", ["org.x", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])], "not_utf8"],
  ["invalid UTF-8 topic", [new Uint8Array([0xc3, 0x28]), env({})], "not_utf8"],
  ["truncated UTF-8 sequence", ["org.x", new Uint8Array([0x7b, 0x22, 0xe2, 0x82])], "not_utf8"],
  ["plain text", ["org.x", "hello world"], "not_json"],
  ["truncated JSON", ["org.x", '{"msg": {'], "not_json"],
  ["JSON with trailing garbage", ["org.x", env({ msg_id: "2026-trail" }) + " }x"], "not_json"],
  ["NUL bytes", ["org.x", "\u0000\u0000"], "not_json"],
  ["10 MB of garbage", ["org.x", "x".repeat(10 * 1024 * 1024)], "not_json"],
  ["deeply nested arrays (200,000 levels)", ["org.x", deep(200_000)], "not_object"],
  ["deeply nested object as msg_id", ["org.x", `{"msg":{},"msg_id":${"{\"a\":".repeat(5000)}1${"}".repeat(5000)}}`], "no_msg_id"],
  ["JSON number", ["org.x", "42"], "not_object"],
  ["JSON string", ["org.x", '"msg"'], "not_object"],
  ["JSON null", ["org.x", "null"], "not_object"],
  ["JSON true", ["org.x", "true"], "not_object"],
  ["JSON array", ["org.x", "[1,2,3]"], "not_object"],
  ["array of envelopes", ["org.x", `[${env({})}]`], "not_object"],
  ["the bridge's own output", ["org.x", env({ username: "amqp-bridge", msg_id: "2026-loop" })], "loop"],
  ["no msg_id", ["org.x", JSON.stringify({ msg: { a: 1 }, username: "u" })], "no_msg_id"],
  ["empty object", ["org.x", "{}"], "no_msg_id"],
  ["msg_id a number", ["org.x", env({ msg_id: 12345 })], "no_msg_id"],
  ["msg_id empty", ["org.x", env({ msg_id: "" })], "no_msg_id"],
  ["msg_id an object", ["org.x", env({ msg_id: { id: 1 } })], "no_msg_id"],
  ["no msg", ["org.x", JSON.stringify({ msg_id: "2026-nomsg", username: "u" })], "no_msg"],
  ["msg a string", ["org.x", env({ msg: "text", msg_id: "2026-str" })], "msg_not_object"],
  ["msg a non-empty array", ["org.x", env({ msg: [1], msg_id: "2026-arr" })], "msg_not_object"],
  ["huge topic (1 MB)", ["org." + "x".repeat(1024 * 1024), env({ msg_id: "2026-bigtopic" })], "too_long"],
  ["msg_id over 255 bytes", ["org.x", env({ msg_id: "2026-" + "y".repeat(300) })], "too_long"],
];

const amqp = testChannel();

describe("bad input never crashes zmq_to_amqp", () => {
  it(`${CORPUS.length} kinds of malformed frames interleaved with good messages`, async () => {
    assert.ok(new Set(CORPUS.map(([what]) => what)).size >= 25);
    const exchange = unique("test.badinput");
    await amqp.ch.exchangeDeclare(exchange, "topic", { durable: true });
    const received = await collect(amqp.ch, exchange);

    const port = freePort();
    const pub = new zmq.Publisher({ sendHighWaterMark: 0 });
    await pub.bind(`tcp://127.0.0.1:${port}`);
    const [command, args] = cliCommand(["zmq_to_amqp", "--zmq-endpoint", `tcp://127.0.0.1:${port}`, "--exchange", exchange, "--amqp-url", AMQP_URL]);
    const { child, out, err, exited } = spawnCaptured(command, args, { cwd: root });
    try {
      const good = (n: number) => ["org.fedoraproject.test.good", env({ topic: "org.fedoraproject.test.good", msg: { n, s: "✓" }, msg_id: `2026-good-${n}` })];
      let probes = 0;
      await eventually(() => {
        void pub.send(good(-++probes));
        return received.length > 0;
      }, "the bridge to forward a first message", 30_000);
      await new Promise((r) => setTimeout(r, 200));
      const probesSent = probes;

      let n = 0;
      for (const [, frames] of CORPUS) {
        await pub.send(good(n++));
        await pub.send(frames);
      }
      await pub.send(good(n++));
      const goodIds = (m: AMQPMessage) => m.properties.messageId?.startsWith("2026-good-") && !m.properties.messageId.startsWith("2026-good--");
      await eventually(() => received.filter(goodIds).length >= n, `${n} good messages`, 60_000);
      assert.deepEqual(new Set(received.filter(goodIds).map((m) => m.properties.messageId)), new Set(Array.from({ length: n }, (_, i) => `2026-good-${i}`)));
      assert.equal(child.exitCode, null, "the process is still running");

      process.kill(child.pid!, "SIGINT"); // not child.kill: Deno then reports the signal instead of the exit code
      assert.equal(await exited, 0, err());
      const summary = out().split("\n").find((l) => l.startsWith("summary zmq_to_amqp:main "))!;
      assert.ok(summary, out());
      const counts = Object.fromEntries([...summary.matchAll(/(\w+)=(\d+)/g)].map(([, k, v]) => [k!, Number(v)]));
      const expected: Record<string, number> = {};
      for (const [, , reason] of CORPUS) expected[reason] = (expected[reason] ?? 0) + 1;
      for (const [reason, count] of Object.entries(expected)) assert.equal(counts[`dropped_${reason}`], count, `dropped_${reason}`);
      assert.equal(counts.dropped, CORPUS.length);
      // Probes sent before the subscription reached the PUB never arrived (ZeroMQ's slow joiner).
      assert.ok(counts.received >= CORPUS.length + n && counts.received <= CORPUS.length + n + probesSent);
      assert.equal(counts.forwarded, counts.received - CORPUS.length);
      assert.ok(err().includes("dropped (not_json)"), "drops are logged");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      pub.close();
      await amqp.ch.exchangeDelete(exchange);
    }
  });
});
