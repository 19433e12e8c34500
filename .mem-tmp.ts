import * as zmq from "zeromq";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { AMQPClient } from "@cloudamqp/amqp-client";
import { amqpTransport } from "./actors/amqp.ts";
import { zmqTransport } from "./actors/zmq.ts";
import { AMQP_URL, eventually, freePort, startSystem, unique } from "./test/support/system.ts";
import { loadSamples } from "./actors/samples.ts";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
setFlagsFromString("--expose-gc"); const gc = runInNewContext("gc") as () => void;
const mu = (l: string) => { gc(); gc(); const m = process.memoryUsage(); console.log(l, Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Math.round(v / 1048576)]))); };
mu("start");
const c = new AMQPClient(AMQP_URL); await c.connect(); const ch = await c.channel();
const ex = unique("memx"); await ch.exchangeDeclare(ex, "topic", { durable: true });
const ep = `tcp://127.0.0.1:${freePort()}`; const pub = new zmq.Publisher({ sendHighWaterMark: 0 }); await pub.bind(ep);
const run = startSystem({ brokers: { main: { url: AMQP_URL } }, bridges: [{ name: "in", kind: "zmq_to_amqp", zmq: { endpoints: [ep] }, amqp: { broker: "main", exchange: ex } }] }, { amqp: amqpTransport, zmq: zmqTransport });
await run.until("zmq_to_amqp:in", "forwarding");
const ctx = () => run.ref("zmq_to_amqp:in").getSnapshot().context as any;
await eventually(() => { void pub.send(["org.x.probe", JSON.stringify({ topic: "org.x.probe", msg: {}, msg_id: "2026-" + randomUUID(), username: "x" })]); return ctx().stats.forwarded > 0; }, "probe");
mu("idle");
const samples = loadSamples();
const w = new AMQPClient(AMQP_URL); await w.connect(); const wch = await w.channel();
try {
  execFileSync("rabbitmqctl", ["set_vm_memory_high_watermark", "0.0000001"]);
  await eventually(() => { if (!w.blocked) void wch.basicPublish("amq.topic", "x", "{}").catch(() => {}); return Boolean(w.blocked); }, "blocked");
  const N = Number(process.env.N ?? 100000);
  for (let i = 0; i < N; i++) { const s = samples[i % samples.length]; const msg = { ...s.msg as object, bench_pad: "x".repeat(Math.max(0, 850 - JSON.stringify(s.msg).length)) }; await pub.send([s.topic, JSON.stringify({ topic: s.topic, msg, msg_id: "2026-" + randomUUID(), timestamp: 1, i, username: "b" })]); }
  await eventually(() => ctx().stats.received >= N, "received", 60000);
  await new Promise(r => setTimeout(r, 1000));
  console.log("buffer", ctx().buffer.size, ctx().buffer.bytes, ctx().stats.summary());
  mu("blocked+" + N);
  if (process.env.SNAP) { const v8 = await import("node:v8"); console.log(v8.writeHeapSnapshot("/tmp/blocked.heapsnapshot")); }
} finally { execFileSync("rabbitmqctl", ["set_vm_memory_high_watermark", "0.4"]); }
await run.stop(30000).catch(e => console.log(e.message)); pub.close(); await ch.exchangeDelete(ex); await c.close(); await w.close();
