// Small helpers shared by the phases: timing, rounding, percentiles, polling, AMQP connections and topology.
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { AMQP_URL } from "../../test/support/system.ts";
import type { AmqpMessage } from "./messages.ts";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;
export const MB = 1024 * 1024;
export const SETTLE_MS = 2000;

/** Nearest-rank percentiles of raw samples. (VerifierTracker's histogram is private and whole-ms, too coarse here.) */
export function distribution(values: number[]) {
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => (sorted.length ? sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN);
  return { samples: sorted.length, p50: round(at(50), 3), p99: round(at(99), 3), max: round(at(100), 3), mean: round(sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1), 3) };
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function until(check: () => boolean, what: string, timeoutMs: number, pollMs = 1): Promise<void> {
  const start = performance.now();
  while (!check()) {
    if (performance.now() - start > timeoutMs) throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}

export async function connect(name: string) {
  const u = new URL(AMQP_URL);
  u.searchParams.set("name", name);
  const client = new AMQPClient(u.toString());
  await client.connect();
  return client;
}

/** Publishes all, at most `window` awaiting their confirm, as publisher.ts does; ms from first publish to last confirm. */
export function publishWindowed(ch: AMQPChannel, exchange: string, messages: AmqpMessage[], window: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let next = 0;
    let confirmed = 0;
    let inflight = 0;
    const fill = () => {
      while (inflight < window && next < messages.length) {
        const m = messages[next++]!;
        inflight++;
        ch.basicPublish(exchange, m.routingKey, m.body, m.properties, true).then(() => {
          inflight--;
          if (++confirmed === messages.length) resolve(performance.now() - start);
          else fill();
        }, reject);
      }
    };
    fill();
  });
}

export async function durableQueueOn(ch: AMQPChannel, exchange: string, queue: string) {
  await ch.exchangeDeclare(exchange, "topic", { durable: true });
  await ch.queueDeclare(queue, { durable: true });
  await ch.queueBind(queue, exchange, "#");
}

/** Deletes what a phase declared, on a fresh connection (the phase's own may be the one that broke). */
export async function dropTopology(queues: string[], exchanges: string[]) {
  let client: AMQPClient | undefined;
  try {
    client = await connect("bench cleanup");
    const ch = await client.channel();
    for (const q of queues) await ch.queueDelete(q);
    for (const e of exchanges) await ch.exchangeDelete(e);
  } catch (e) {
    process.stderr.write(`bench: cannot delete ${[...queues, ...exchanges].join(", ")}: ${(e as Error).message}; delete them by hand\n`);
  } finally {
    await client?.close().catch(() => {});
  }
}
