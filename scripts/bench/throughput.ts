// Throughput phases (a)–(d): raw publish, zmq_to_amqp, raw consume, amqp_to_zmq.
import { performance } from "node:perf_hooks";
import * as zmq from "zeromq";
import type { AMQPClient } from "@cloudamqp/amqp-client";
import { amqpTransport } from "../../actors/amqp.ts";
import { zmqTransport } from "../../actors/zmq.ts";
import { AMQP_URL, eventually, freePort, startSystem, unique } from "../../test/support/system.ts";
import type { AmqpToZmqContext, Bench, ZmqToAmqpContext } from "./context.ts";
import { cpuMeter, cpuText, type PhaseResult } from "./cpu.ts";
import { probeFrames } from "./messages.ts";
import { Peer } from "./peer.ts";
import { SETTLE_MS, connect, dropTopology, durableQueueOn, publishWindowed, round, sleep, until } from "./util.ts";

const real = { amqp: amqpTransport, zmq: zmqTransport };

// (a) ------------------------------------------------------------------------------

export async function rawPublish(b: Bench): Promise<PhaseResult> {
  const exchange = unique("bench.a.x");
  const queue = unique("bench.a.q");
  const client = await connect("bench raw publisher");
  try {
    const ch = await client.channel();
    await durableQueueOn(ch, exchange, queue);
    await ch.confirmSelect();
    const meter = cpuMeter();
    const ms = await publishWindowed(ch, exchange, b.amqpMessages, b.window);
    const cpu = meter(b.n);
    const rate = b.n / (ms / 1000);
    b.log(`(a) raw publish: ${b.n} persistent, confirmed, ${b.window} in flight: ${round(ms)} ms, ${round(rate)} msg/s; ${cpuText(cpu, "client")}`);
    return { rate, cpu };
  } finally {
    await client.close().catch(() => {});
    await dropTopology([queue], [exchange]);
  }
}

// (b) ------------------------------------------------------------------------------

/** A zmq_to_amqp bridge in this process, its exchange bound to a durable queue, probed until ZeroMQ delivers. */
export async function withZmqToAmqp<T>(b: Bench, pubSide: "peer" | "local", body: (s: {
  ctx: () => ZmqToAmqpContext;
  queue: string;
  peer?: Peer;
  pub?: zmq.Publisher;
}) => Promise<T>): Promise<T> {
  const exchange = unique("bench.zmq.topic");
  const queue = unique("bench.zq");
  const endpoint = `tcp://127.0.0.1:${freePort()}`;
  let peer: Peer | undefined;
  let pub: zmq.Publisher | undefined;
  let run: ReturnType<typeof startSystem> | undefined;
  try {
    await durableQueueOn(b.ch, exchange, queue);
    if (pubSide === "peer") peer = await Peer.start("pub", endpoint, b.messageBytes);
    else {
      pub = new zmq.Publisher({ sendHighWaterMark: 0, linger: 0 });
      await pub.bind(endpoint);
    }
    const started = startSystem(
      {
        brokers: { main: { url: AMQP_URL } },
        bridges: [{ name: "bench", kind: "zmq_to_amqp", zmq: { endpoints: [endpoint] }, amqp: { broker: "main", exchange }, window: b.window }],
      },
      real,
    );
    run = started;
    await started.until("zmq_to_amqp:bench", "forwarding", 20_000);
    const ctx = () => started.ref("zmq_to_amqp:bench").getSnapshot().context as ZmqToAmqpContext;
    // ZeroMQ's slow joiner: probe until the subscription has reached the PUB.
    await eventually(() => {
      if (peer) void peer.request("probe");
      else void pub!.send(probeFrames());
      return ctx().stats.forwarded > 0;
    }, "a probe to cross zmq_to_amqp", 20_000);
    await sleep(300);
    await b.ch.queuePurge(queue);
    return await body({ ctx, queue, peer, pub });
  } finally {
    await run?.stop(30_000).catch((e: Error) => b.log(`bench: stopping zmq_to_amqp: ${e.message}`));
    peer?.close();
    pub?.close();
    await dropTopology([queue], [exchange]);
  }
}

export async function zmqToAmqpThroughput(b: Bench): Promise<PhaseResult & { sendMs: number }> {
  return withZmqToAmqp(b, "peer", async ({ ctx, peer }) => {
    await peer!.request("prepare", { n: b.n });
    const base = ctx().stats.forwarded;
    const droppedBefore = ctx().stats.droppedTotal;
    const meter = cpuMeter(peer!.pid);
    const start = performance.now();
    const sending = peer!.request("send");
    await until(() => ctx().stats.forwarded - base >= b.n || ctx().stats.droppedTotal > droppedBefore, `${b.n} confirms in zmq_to_amqp`, 300_000, 5);
    const ms = performance.now() - start;
    const cpu = meter(b.n);
    const sent = await sending;
    const dropped = ctx().stats.droppedTotal - droppedBefore;
    if (dropped) {
      // Let it settle to report the real count; the rate would be meaningless.
      await sleep(2000);
      throw new Error(`bench: zmq_to_amqp dropped ${ctx().stats.droppedTotal - droppedBefore} messages (${[...ctx().stats.dropped]}); rate not valid`);
    }
    const rate = b.n / (ms / 1000);
    b.log(`(b) zmq_to_amqp: ${b.n} ZeroMQ → confirmed: ${round(ms)} ms, ${round(rate)} msg/s (peer sent all in ${round(sent.ms as number)} ms); ${cpuText(cpu, "bridge")}`);
    return { rate, cpu, sendMs: sent.ms as number };
  });
}

// (c) ------------------------------------------------------------------------------

async function prefill(b: Bench, exchange: string, queue: string) {
  await durableQueueOn(b.ch, exchange, queue);
  const client = await connect("bench prefill");
  try {
    const ch = await client.channel();
    await ch.confirmSelect();
    await publishWindowed(ch, exchange, b.amqpMessages, b.window);
  } finally {
    await client.close().catch(() => {});
  }
}

/** Consumes N at prefetch W, acking like forwarder.ts (one `multiple` ack per turn of the event loop). */
export async function rawConsume(b: Bench): Promise<PhaseResult> {
  const exchange = unique("bench.c.x");
  const queue = unique("bench.c.q");
  let client: AMQPClient | undefined;
  try {
    await prefill(b, exchange, queue);
    await sleep(SETTLE_MS); // the broker finishes writing the pre-fill first, as in (d)
    client = await connect("bench raw consumer");
    const ch = await client.channel();
    await ch.basicQos(b.prefetch);
    let count = 0;
    let first = 0;
    let highest = 0;
    let scheduled = false;
    let done: (ms: number) => void;
    const finished = new Promise<number>((r) => (done = r));
    const meter = cpuMeter();
    const flush = () => {
      scheduled = false;
      void ch.basicAck(highest, true);
      if (count === b.n) done(performance.now() - first);
    };
    await ch.basicConsume(queue, { noAck: false }, (m) => {
      if (++count === 1) first = performance.now();
      highest = m.deliveryTag;
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
    const ms = await Promise.race([finished, sleep(300_000).then(() => Promise.reject(new Error("bench: raw consume timed out")))]);
    const cpu = meter(b.n);
    const rate = (b.n - 1) / (ms / 1000);
    b.log(`(c) raw consume: ${b.n} at prefetch ${b.prefetch}, first delivery → last ack: ${round(ms)} ms, ${round(rate)} msg/s; ${cpuText(cpu, "client")}`);
    await ch.close().catch(() => {});
    return { rate, cpu };
  } finally {
    await client?.close().catch(() => {});
    await dropTopology([queue], [exchange]);
  }
}

// (d) ------------------------------------------------------------------------------

export async function amqpToZmqThroughput(b: Bench): Promise<PhaseResult> {
  const exchange = unique("bench.amq.topic");
  const queue = unique("bench.amqp_to_zmq");
  const endpoint = `tcp://127.0.0.1:${freePort()}`;
  let sub: Peer | undefined;
  let run: ReturnType<typeof startSystem> | undefined;
  try {
    await prefill(b, exchange, queue);
    await sleep(SETTLE_MS); // the broker finishes writing the pre-fill first, as in (c)
    // The SUB is connecting (every 1 ms) before the bridge binds, so nothing is lost to the slow joiner.
    sub = await Peer.start("sub", endpoint, b.messageBytes);
    const got = sub.request("expect", { n: b.n }, 300_000);
    const meter = cpuMeter(sub.pid);
    run = startSystem(
      {
        brokers: { main: { url: AMQP_URL } },
        bridges: [
          { name: "bench", kind: "amqp_to_zmq", zmq: { publish_endpoint: endpoint }, amqp: { broker: "main", exchange, queue, prefetch: b.prefetch } },
        ],
      },
      real,
    );
    const r = run;
    const s = sub;
    const stats = () => (r.ref("amqp_to_zmq:bench").getSnapshot().context as AmqpToZmqContext).stats;
    const lost = new Promise<never>((_, reject) => {
      const check = setInterval(async () => {
        try {
          if (stats().forwarded >= b.n) {
            clearInterval(check);
            await sleep(3000);
            const { count } = await s.request("count");
            reject(new Error(`bench: amqp_to_zmq sent ${b.n} but the SUB received ${count} (slow joiner); rerun`));
          }
        } catch {
          /* the bridge is not spawned yet */
        }
      }, 50);
      void got.finally(() => clearInterval(check));
    });
    const reply = await Promise.race([got, lost]);
    const cpu = meter(b.n);
    const ms = reply.ms as number;
    const rate = (b.n - 1) / (ms / 1000);
    b.log(`(d) amqp_to_zmq: ${b.n} from a pre-filled queue to the SUB, first → last received: ${round(ms)} ms, ${round(rate)} msg/s; ${cpuText(cpu, "bridge")}`);
    return { rate, cpu };
  } finally {
    await run?.stop(30_000).catch((e: Error) => b.log(`bench: stopping amqp_to_zmq: ${e.message}`));
    sub?.close();
    await dropTopology([queue], [exchange]);
  }
}
