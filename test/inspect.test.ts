// --inspect: the running system streams XState inspection events to a
// Stately-compatible WebSocket inspector, with no credential in them.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { WebSocketServer } from "ws";
import type { AnyActorRef } from "xstate";
import { simTransports } from "../actors/sim/index.ts";
import { runManifest } from "../actors/runtime.ts";
import { memoryLogger } from "../lib/log.ts";
import { eventually, manifestOf } from "./support/system.ts";

describe("--inspect", () => {
  it("streams actor, snapshot and event inspection events to a WebSocket inspector", async () => {
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise((r) => server.once("listening", r));
    const port = (server.address() as { port: number }).port;
    const received: string[] = [];
    server.on("connection", (socket) => socket.on("message", (data) => received.push(data.toString())));
    const manifest = manifestOf({
      brokers: { main: { url: "amqp://fedmsg:hunter2-secret@sim/%2F" } },
      bridges: [{ name: "b", kind: "zmq_to_amqp", zmq: { endpoints: ["tcp://127.0.0.1:9940"] }, amqp: { broker: "main" } }],
    });
    let system: AnyActorRef | undefined;
    const done = runManifest(manifest, {
      transports: simTransports(),
      logger: memoryLogger(),
      status: "off",
      signals: false,
      inspect: `ws://127.0.0.1:${port}`,
      onStarted: (s) => (system = s),
    });
    try {
      await eventually(() => received.some((m) => m.includes("zmq_to_amqp:b")) && received.some((m) => m.includes("@xstate.snapshot")), "inspection events", 10_000);
      const all = received.join("\n");
      assert.ok(all.includes("@xstate.actor"));
      assert.ok(all.includes("amqp:main"));
      const leak = all.indexOf("hunter2-secret");
      assert.equal(leak, -1, `password seen by the inspector: …${all.slice(Math.max(0, leak - 300), leak + 50)}`);
    } finally {
      system?.send({ type: "STOP" });
      assert.equal(await done, 0);
      server.close();
    }
  });
});
