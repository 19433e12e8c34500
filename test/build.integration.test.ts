// `npm run build`'s single-file CLI (scripts/build.ts) runs as the TypeScript
// one does: a manifest validates, and zmq_to_amqp forwards a message from a real
// ZeroMQ PUB to the local broker and stops cleanly with its summary.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as zmq from "zeromq";
import { buildBundle } from "../scripts/build.ts";
import { AMQP_URL, collect, eventually, freePort, spawnCaptured, testChannel, unique } from "./support/system.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const isDeno = "Deno" in globalThis;
const amqp = testChannel();

describe("the bundled CLI (npm run build)", { skip: isDeno && "the bundle is for Node.js; Deno runs the TypeScript itself" }, () => {
  // Beside the real one, so that it finds node_modules and test/fixtures the same way.
  const bundle = fileURLToPath(new URL(`../dist/${unique("test-bundle")}.mjs`, import.meta.url));
  before(() => buildBundle(bundle));
  after(() => rmSync(bundle, { force: true }));

  it("validates a manifest", () => {
    const ok = spawnSync("node", [bundle, "validate", "--manifest", "manifests/demo.yaml"], { cwd: root, encoding: "utf8" });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /manifests\/demo\.yaml: valid/);
    const bad = spawnSync("node", [bundle, "zmq_to_amqp", "--zmq-endpoint", "not-an-endpoint"], { cwd: root, encoding: "utf8" });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /zmq\.endpoints\[0\]/);
  });

  it("runs zmq_to_amqp against the broker", async () => {
    const exchange = unique("test.bundle");
    await amqp.ch.exchangeDeclare(exchange, "topic", { durable: true });
    const received = await collect(amqp.ch, exchange);
    const port = freePort();
    const pub = new zmq.Publisher({ sendHighWaterMark: 0 });
    await pub.bind(`tcp://127.0.0.1:${port}`);
    const { child, out, err, exited } = spawnCaptured("node", [bundle, "zmq_to_amqp", "--zmq-endpoint", `tcp://127.0.0.1:${port}`, "--exchange", exchange, "--amqp-url", AMQP_URL], { cwd: root });
    try {
      let sent = 0;
      await eventually(() => {
        const n = sent++;
        void pub.send(["org.fedoraproject.test.bundle", JSON.stringify({ topic: "x", msg: { n }, msg_id: `2026-bundle-${n}`, timestamp: 1, i: n, username: "test" })]);
        return received.length > 0;
      }, "a message through the bundled zmq_to_amqp", 30_000);
      const m = received[0]!;
      assert.equal(m.routingKey, "org.fedoraproject.test.bundle");
      assert.match(m.properties.messageId!, /^2026-bundle-\d+$/);
      assert.deepEqual(JSON.parse(m.bodyToString()!), { n: Number(m.properties.messageId!.slice("2026-bundle-".length)) });
      process.kill(child.pid!, "SIGINT");
      assert.equal(await exited, 0, err());
      assert.match(out(), /^summary zmq_to_amqp:main .*forwarded=[1-9]/m);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      pub.close();
      await amqp.ch.exchangeDelete(exchange);
    }
  });
});
