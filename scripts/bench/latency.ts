// Phase (e): ZeroMQ send → broker confirm latency at a paced rate, through zmq_to_amqp and through the raw client.
import { randomUUID } from "node:crypto";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import type { AMQPProperties } from "@cloudamqp/amqp-client";
import { zmqToAmqp } from "../../schema/convert.ts";
import type { Outgoing, PublishBuffer } from "../../lib/publish-buffer.ts";
import { unique } from "../../test/support/system.ts";
import type { Bench } from "./context.ts";
import { cpuMeter } from "./cpu.ts";
import { decoder, encoder, envelopeOf, type Template } from "./messages.ts";
import { withZmqToAmqp } from "./throughput.ts";
import { connect, distribution, dropTopology, durableQueueOn, round, sleep, until } from "./util.ts";

export interface LatencyOptions {
  rate: number;
  seconds: number;
  warmupSeconds: number;
}

/** Sends at `rate` from this process, each envelope carrying its send time (performance.now()). */
async function paced(o: LatencyOptions, templates: Template[], send: (topic: string, body: string) => Promise<unknown>) {
  const total = o.rate * o.seconds;
  const year = new Date().getUTCFullYear();
  const start = performance.now();
  let i = 0;
  while (i < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * o.rate) / 1000) + 1);
    while (i < due) {
      const t = templates[i % templates.length]!;
      const msg = { ...t.msg, bench_seq: i, bench_sent_ms: performance.now() };
      await send(t.topic, JSON.stringify(envelopeOf(t, `${year}-${randomUUID()}`, i, msg)));
      i++;
    }
    await sleep(1);
  }
  return performance.now() - start;
}

/** This process's event-loop delay during `run` (ms): a stalled loop shows up as latency. */
async function withLoopDelay<T>(run: () => Promise<T>): Promise<{ result: T; loop?: { p50: number; p99: number; max: number } }> {
  let h: ReturnType<typeof monitorEventLoopDelay> | undefined;
  try {
    h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
  } catch {
    h = undefined; // not every runtime has it
  }
  const result = await run();
  h?.disable();
  const ms = (ns: number) => round(ns / 1e6, 2);
  return { result, loop: h ? { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) } : undefined };
}

function latencies(records: [number, Uint8Array][], warmup: number): number[] {
  const out: number[] = [];
  for (const [at, body] of records) {
    const m = JSON.parse(decoder.decode(body)) as { bench_seq?: number; bench_sent_ms?: number };
    if (m.bench_sent_ms !== undefined && m.bench_seq! >= warmup) out.push(at - m.bench_sent_ms);
  }
  return out;
}

/**
 * ZeroMQ send → broker confirm, per message: the bridge's PublishBuffer.confirm
 * (called on each confirm) is wrapped to note the time. With `consumer`, a
 * consumer on the bound queue also notes each arrival.
 */
export async function zmqToAmqpLatency(b: Bench, o: LatencyOptions, consumer: boolean) {
  return withZmqToAmqp(b, "local", async ({ ctx, queue, pub }) => {
    const buffer = ctx().buffer;
    const confirms: [number, Uint8Array][] = [];
    const arrivals: [number, Uint8Array][] = [];
    const confirm = buffer.confirm;
    buffer.confirm = function (this: PublishBuffer, m: Outgoing) {
      confirms.push([performance.now(), m.body]);
      return confirm.call(this, m);
    };
    let consumerTag: string | undefined;
    if (consumer) consumerTag = (await b.ch.basicConsume(queue, { noAck: true }, (m) => void arrivals.push([performance.now(), m.body as Uint8Array]))).tag;
    const total = o.rate * o.seconds;
    try {
      const meter = cpuMeter();
      const { result: ms, loop } = await withLoopDelay(() => paced(o, b.templates, (topic, body) => pub!.send([topic, body])));
      const cpu = meter(total);
      await until(() => confirms.length >= total && (!consumer || arrivals.length >= total), "every latency probe confirmed", 30_000, 5);
      const warmup = o.rate * o.warmupSeconds;
      const offered = total / (ms / 1000);
      return { offered, loop, cpu, confirm: distribution(latencies(confirms, warmup)), arrival: consumer ? distribution(latencies(arrivals, warmup)) : undefined };
    } finally {
      buffer.confirm = confirm;
      if (consumerTag) await b.ch.basicCancel(consumerTag).catch(() => {});
    }
  });
}

/** The same pacing straight through @cloudamqp/amqp-client: what the broker alone costs. */
export async function rawPublishLatency(b: Bench, o: LatencyOptions) {
  const exchange = unique("bench.e.x");
  const queue = unique("bench.e.q");
  const client = await connect("bench raw latency");
  try {
    const ch = await client.channel();
    await durableQueueOn(ch, exchange, queue);
    await ch.confirmSelect();
    const samples: number[] = [];
    const warmup = o.rate * o.warmupSeconds;
    const pending: Promise<unknown>[] = [];
    const now = new Date();
    const meter = cpuMeter();
    const { loop } = await withLoopDelay(() => paced(o, b.templates, async (topic, body) => {
      const r = zmqToAmqp([encoder.encode(topic), encoder.encode(body)], { now, exchange });
      if (!r.ok) throw new Error(r.detail);
      const seq = (JSON.parse(body) as { msg: { bench_seq: number } }).msg.bench_seq;
      const sent = performance.now(); // publish → confirm: the conversion above is not the broker's
      pending.push(
        ch.basicPublish(exchange, r.routingKey, r.body, r.properties as unknown as AMQPProperties, true).then(() => {
          if (seq >= warmup) samples.push(performance.now() - sent);
        }),
      );
    }));
    await Promise.all(pending);
    const cpu = meter(o.rate * o.seconds);
    return { ...distribution(samples), loop, cpu };
  } finally {
    await client.close().catch(() => {});
    await dropTopology([queue], [exchange]);
  }
}
