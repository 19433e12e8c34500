#!/usr/bin/env -S npx tsx
// The bridges' and the verifier's performance, in one run, on the local RabbitMQ
// and loopback ZeroMQ, with real-shaped fedmsg messages: the bodies of
// test/fixtures/fedmsg-samples.jsonl, each fitted (largest keys dropped, then a
// `bench_pad` text added) so its envelope is --bytes (1,024) bytes.
//
//   (a) raw publish: @cloudamqp/amqp-client publishes exactly what zmq_to_amqp
//       would (same body, properties, mandatory), persistent, confirms on, W in
//       flight, to a topic exchange bound to a durable queue. First publish → Nth confirm.
//   (b) zmq_to_amqp in this process; a child process PUBs N frames as fast as it
//       can. Command to the PUB → the bridge's stats.forwarded (confirms) reaches N.
//   (c) raw consume: a durable queue pre-filled with N, basicConsume at prefetch W,
//       one `multiple` ack per turn of the event loop (as forwarder.ts acks).
//       First delivery → Nth delivery acked.
//   (d) amqp_to_zmq in this process on the same kind of pre-filled queue (its named
//       queue); a child process SUB, connecting every 1 ms before the bridge binds,
//       counts: first → Nth message received.
//   ratios: b/a and d/c (medians over --rounds; the order alternates per round).
//   (e) ZeroMQ send → broker confirm at 1,000 msg/s offered: the PUB is in this
//       process, each envelope carries performance.now() at send, and the bridge's
//       PublishBuffer.confirm is wrapped to note each confirm. Without a consumer
//       (headline), with one (also arrival at the consumer), and the raw client's
//       publish → confirm at the same pace (what the broker alone costs).
//   (f) VerifierTracker: matched events/s (best of 3) and heap per pending entry.
//   (g) zmq_to_amqp as a child process under a broker memory alarm (restored to
//       0.4 in every exit path): VmRSS after 100,000 messages, against the
//       manifest's default buffer.max_bytes. Twice: as deployed (`npm run build`'s
//       single file under node; the headline) and through tsx.
//
// Every throughput phase also reports CPU µs per message for this process (the
// client or the bridge), the ZeroMQ peer and the broker, and the cores other work
// used meanwhile: on a small machine the broker, the bridge and the peer share the
// cores, so the ratios follow CPU per message. Before each phase the bench waits
// (--quiet-wait) for other work on the machine to pass.
//
// Usage: npm run bench [-- --json FILE] [--n 50000] [--rounds 3] [--only a,b,...]; --help.
import { parseArgs } from "node:util";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { relative } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import os from "node:os";
import * as zmq from "zeromq";
import { AMQPClient, type AMQPChannel, type AMQPProperties } from "@cloudamqp/amqp-client";
import { amqpTransport } from "../actors/amqp.ts";
import { buildBundle } from "./build.ts";
import { zmqTransport } from "../actors/zmq.ts";
import { loadSamples } from "../actors/samples.ts";
import { zmqToAmqp } from "../schema/convert.ts";
import { VerifierTracker } from "../lib/verifier-tracker.ts";
import type { BridgeStats } from "../lib/stats.ts";
import type { Outgoing, PublishBuffer } from "../lib/publish-buffer.ts";
import { AMQP_URL, eventually, freePort, manifestOf, startSystem, unique } from "../test/support/system.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const isDeno = "Deno" in globalThis;
const real = { amqp: amqpTransport, zmq: zmqTransport };
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const PROBE_TOPIC = "org.fedoraproject.bench.probe";
const TARGETS = { ratio: 0.9, p99Ms: 10, eventsPerS: 200_000, bytesPerPending: 1024, rssOverBoundMb: 80 };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;
const MB = 1024 * 1024;
const SETTLE_MS = 2000;

// ─── Messages ──────────────────────────────────────────────────────────────────

interface Template {
  topic: string;
  msg: Record<string, unknown>;
}

const PAD_TEXT = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. ";
const ID_PLACEHOLDER = `${new Date().getUTCFullYear()}-${randomUUID()}`; // same length as every real id

function envelopeOf(t: Template, msgId: string, i: number, msg = t.msg) {
  return { topic: t.topic, msg, msg_id: msgId, timestamp: Math.floor(Date.now() / 1000), i, username: "bench" };
}

const byteLength = (s: string) => encoder.encode(s).byteLength;

/**
 * The fixture's real bodies, each fitted so its whole fedmsg envelope (the ZeroMQ
 * body frame) is `target` bytes: too big → drop the largest top-level keys; too
 * small → a `bench_pad` text field. Deterministic, so every process gets the same.
 */
function fittedTemplates(target: number): Template[] {
  const out: Template[] = [];
  for (const sample of loadSamples()) {
    const msg = structuredClone(sample.msg) as Record<string, unknown>;
    const size = () => byteLength(JSON.stringify(envelopeOf({ topic: sample.topic, msg }, ID_PLACEHOLDER, 100_000)));
    while (size() > target - 40 && Object.keys(msg).length > 1) {
      let largest = "";
      let largestSize = -1;
      for (const [k, v] of Object.entries(msg)) {
        const s = JSON.stringify(v ?? null).length;
        if (s > largestSize) [largest, largestSize] = [k, s];
      }
      delete msg[largest];
    }
    msg.bench_pad = "";
    const room = target - size();
    if (room < 0) continue;
    msg.bench_pad = PAD_TEXT.repeat(Math.ceil(room / PAD_TEXT.length) + 1).slice(0, room);
    out.push({ topic: sample.topic, msg });
  }
  if (out.length === 0) throw new Error(`bench: no sample of test/fixtures/fedmsg-samples.jsonl fits in ${target} bytes`);
  return out;
}

/** N distinct fedmsg messages as ZeroMQ frames [topic, envelope JSON]. */
function zmqFrames(templates: Template[], n: number, first = 1): [Buffer, Buffer][] {
  const year = new Date().getUTCFullYear();
  const frames: [Buffer, Buffer][] = new Array(n);
  for (let k = 0; k < n; k++) {
    const t = templates[k % templates.length]!;
    frames[k] = [Buffer.from(t.topic), Buffer.from(JSON.stringify(envelopeOf(t, `${year}-${randomUUID()}`, first + k)))];
  }
  return frames;
}

function probeFrames(): [string, string] {
  return [PROBE_TOPIC, JSON.stringify(envelopeOf({ topic: PROBE_TOPIC, msg: { probe: true } }, `${new Date().getUTCFullYear()}-${randomUUID()}`, 0))];
}

interface AmqpMessage {
  routingKey: string;
  body: Uint8Array;
  properties: AMQPProperties;
}

/** What zmq_to_amqp publishes for these frames: the baselines send exactly these. */
function asBridgeOutput(frames: [Buffer, Buffer][], exchange: string): AmqpMessage[] {
  const now = new Date();
  return frames.map((f) => {
    const r = zmqToAmqp(f, { now, exchange });
    if (!r.ok) throw new Error(`bench: a generated message does not convert: ${r.reason} ${r.detail}`);
    return { routingKey: r.routingKey, body: r.body, properties: r.properties as unknown as AMQPProperties };
  });
}

// ─── Small helpers ─────────────────────────────────────────────────────────────

/** Nearest-rank percentiles of raw samples. (VerifierTracker's histogram is private and whole-ms, too coarse here.) */
function distribution(values: number[]) {
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => (sorted.length ? sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN);
  return { samples: sorted.length, p50: round(at(50), 3), p99: round(at(99), 3), max: round(at(100), 3), mean: round(sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1), 3) };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function until(check: () => boolean, what: string, timeoutMs: number, pollMs = 1): Promise<void> {
  const start = performance.now();
  while (!check()) {
    if (performance.now() - start > timeoutMs) throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}

async function connect(name: string) {
  const u = new URL(AMQP_URL);
  u.searchParams.set("name", name);
  const client = new AMQPClient(u.toString());
  await client.connect();
  return client;
}

/** Publishes all, at most `window` awaiting their confirm, as publisher.ts does; ms from first publish to last confirm. */
function publishWindowed(ch: AMQPChannel, exchange: string, messages: AmqpMessage[], window: number): Promise<number> {
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

async function durableQueueOn(ch: AMQPChannel, exchange: string, queue: string) {
  await ch.exchangeDeclare(exchange, "topic", { durable: true });
  await ch.queueDeclare(queue, { durable: true });
  await ch.queueBind(queue, exchange, "#");
}

/** Deletes what a phase declared, on a fresh connection (the phase's own may be the one that broke). */
async function dropTopology(queues: string[], exchanges: string[]) {
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

// ─── CPU accounting ─────────────────────────────────────────────────────────────
// Where the CPU of a phase went, from /proc: this process (the baseline client or
// the in-process bridge), the ZeroMQ peer, the broker (beam.smp), and everything
// else on the machine (other work competing for the same cores).

const TICK_MS = 10; // Linux USER_HZ = 100

function procCpuMs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return 0;
  }
}

function machineBusyMs(): number {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return (total - f[3]! - f[4]!) * TICK_MS;
}

let brokerPidCache: number | undefined;
function brokerPid(): number | undefined {
  if (brokerPidCache) return brokerPidCache;
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, "utf8").trim() === "beam.smp") return (brokerPidCache = Number(d));
    } catch {
      /* gone */
    }
  }
  return undefined;
}

interface CpuReport {
  wall_ms: number;
  /** CPU µs per message: this process (client or bridge), the ZeroMQ peer, the broker. */
  us_per_msg: { self: number; peer?: number; broker: number };
  /** Mean cores busy with other work during the phase (0–cores). */
  other_cores: number;
}

function cpuMeter(peerPid?: number) {
  const broker = brokerPid();
  const t0 = performance.now();
  const self0 = procCpuMs(process.pid);
  const peer0 = procCpuMs(peerPid);
  const broker0 = procCpuMs(broker);
  const busy0 = machineBusyMs();
  return (messages: number): CpuReport => {
    const wall = performance.now() - t0;
    const self = procCpuMs(process.pid) - self0;
    const peer = procCpuMs(peerPid) - peer0;
    const brokerMs = procCpuMs(broker) - broker0;
    const others = Math.max(0, machineBusyMs() - busy0 - self - peer - brokerMs);
    const per = (ms: number) => round((ms * 1000) / messages, 1);
    return {
      wall_ms: round(wall),
      us_per_msg: { self: per(self), ...(peerPid ? { peer: per(peer) } : {}), broker: per(brokerMs) },
      other_cores: round(others / wall, 2),
    };
  };
}

/**
 * Waits (up to `maxMs`) until work other than this process and the broker uses
 * less than `threshold` cores, sampled over 1 s: other jobs on a small machine
 * (a test suite, a build) otherwise decide the result. Returns the last sample.
 */
async function awaitQuiet(maxMs: number, log: (line: string) => void, threshold = 0.25): Promise<number> {
  const start = performance.now();
  let others = 0;
  for (;;) {
    const meter = cpuMeter();
    await sleep(1000);
    others = meter(1).other_cores;
    if (others < threshold) return others;
    if (performance.now() - start > maxMs) {
      log(`bench: other work keeps ${others} cores busy; measuring anyway (see other_cores in the results)`);
      return others;
    }
  }
}

interface PhaseResult {
  rate: number;
  cpu: CpuReport;
}

const cpuText = (c: CpuReport, self: string) =>
  `cpu µs/msg: ${self} ${c.us_per_msg.self}${c.us_per_msg.peer !== undefined ? `, peer ${c.us_per_msg.peer}` : ""}, broker ${c.us_per_msg.broker}; other load ${c.other_cores} cores`;

// ─── The ZeroMQ peer (a child process) ─────────────────────────────────────────

type PeerRole = "pub" | "sub";
type Reply = Record<string, unknown> & { id?: number };

/** Runs in the child: a PUB that binds, or a SUB that connects; commands on stdin, replies on stdout. */
async function runPeer(role: PeerRole, endpoint: string, messageBytes: number) {
  const reply = (o: Reply) => process.stdout.write(JSON.stringify(o) + "\n");
  const templates = fittedTemplates(messageBytes);
  const lines = createInterface({ input: process.stdin });
  lines.on("close", () => process.exit(0));
  if (role === "pub") {
    const pub = new zmq.Publisher({ sendHighWaterMark: 0, linger: 0 });
    await pub.bind(endpoint);
    let frames: [Buffer, Buffer][] = [];
    reply({ ready: true });
    for await (const line of lines) {
      const cmd = JSON.parse(line) as { id: number; cmd: string; n?: number };
      if (cmd.cmd === "prepare") {
        frames = zmqFrames(templates, cmd.n!);
        reply({ id: cmd.id });
      } else if (cmd.cmd === "probe") {
        await pub.send(probeFrames());
        reply({ id: cmd.id });
      } else if (cmd.cmd === "send") {
        const start = performance.now();
        for (const f of frames) await pub.send(f);
        reply({ id: cmd.id, ms: performance.now() - start, sent: frames.length });
      } else if (cmd.cmd === "exit") {
        pub.close();
        process.exit(0);
      }
    }
  } else {
    // Retries the connect every 1 ms, so it is attached within a millisecond of the bridge binding.
    const sub = new zmq.Subscriber({ receiveHighWaterMark: 0, reconnectInterval: 1, linger: 0 });
    sub.connect(endpoint);
    sub.subscribe();
    let count = 0;
    let first = 0;
    let expect = Infinity;
    let expectId = 0;
    void (async () => {
      for await (const [topic] of sub) {
        if (topic!.toString() === PROBE_TOPIC) continue;
        if (++count === 1) first = performance.now();
        if (count === expect) reply({ id: expectId, count, ms: performance.now() - first });
      }
    })();
    reply({ ready: true });
    for await (const line of lines) {
      const cmd = JSON.parse(line) as { id: number; cmd: string; n?: number };
      if (cmd.cmd === "expect") {
        count = 0;
        expect = cmd.n!;
        expectId = cmd.id;
      } else if (cmd.cmd === "count") {
        reply({ id: cmd.id, count });
      } else if (cmd.cmd === "exit") {
        sub.close();
        process.exit(0);
      }
    }
  }
}

const children = new Set<ChildProcess>();
/** The zmq_to_amqp node process of (g), under npx: killed on the way out too. */
const bridgePids = new Set<number>();

function killBridges(signal: NodeJS.Signals) {
  for (const pid of bridgePids) {
    try {
      process.kill(pid, signal);
    } catch {
      bridgePids.delete(pid);
    }
  }
}

class Peer {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private ready!: Promise<void>;

  private constructor(private readonly child: ChildProcess) {}

  get pid() {
    return this.child.pid;
  }

  static async start(role: PeerRole, endpoint: string, messageBytes: number): Promise<Peer> {
    const [cmd, args] = isDeno ? [process.execPath, ["run", "-A", SELF]] : [process.execPath, ["--import", "tsx", SELF]];
    const child = spawn(cmd, [...args, "--peer", role, "--endpoint", endpoint, "--bytes", String(messageBytes)], { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
    children.add(child);
    child.on("exit", () => children.delete(child));
    const peer = new Peer(child);
    peer.ready = new Promise((resolve, reject) => {
      child.on("exit", (code) => reject(new Error(`bench: ZeroMQ ${role} peer exited (${code})`)));
      createInterface({ input: child.stdout! }).on("line", (line) => {
        const r = JSON.parse(line) as Reply;
        if (r.ready) return resolve();
        if (r.id === undefined) return;
        peer.waiting.get(r.id)?.(r);
        peer.waiting.delete(r.id);
      });
    });
    await peer.ready;
    return peer;
  }

  request(cmd: string, fields: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bench: peer did not answer ${cmd} in ${timeoutMs} ms`)), timeoutMs);
      this.waiting.set(id, (r) => (clearTimeout(timer), resolve(r)));
      this.child.stdin!.write(JSON.stringify({ id, cmd, ...fields }) + "\n");
    });
  }

  close() {
    this.child.stdin!.end();
    setTimeout(() => this.child.kill("SIGKILL"), 2000).unref();
  }
}

// ─── Context shared by the phases ──────────────────────────────────────────────

interface Bench {
  n: number;
  window: number;
  prefetch: number;
  messageBytes: number;
  templates: Template[];
  /** The bridge's output for N messages (for the baselines and the pre-fills). */
  amqpMessages: AmqpMessage[];
  ch: AMQPChannel;
  client: AMQPClient;
  log: (line: string) => void;
}

type ZmqToAmqpContext = { stats: BridgeStats; buffer: PublishBuffer };
type AmqpToZmqContext = { stats: BridgeStats };

// (a) ------------------------------------------------------------------------------

async function rawPublish(b: Bench): Promise<PhaseResult> {
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
async function withZmqToAmqp<T>(b: Bench, pubSide: "peer" | "local", body: (s: {
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

async function zmqToAmqpThroughput(b: Bench): Promise<PhaseResult & { sendMs: number }> {
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
async function rawConsume(b: Bench): Promise<PhaseResult> {
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

async function amqpToZmqThroughput(b: Bench): Promise<PhaseResult> {
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

// (e) ------------------------------------------------------------------------------

interface LatencyOptions {
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
async function zmqToAmqpLatency(b: Bench, o: LatencyOptions, consumer: boolean) {
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
async function rawPublishLatency(b: Bench, o: LatencyOptions) {
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

// (f) ------------------------------------------------------------------------------

function collectGarbage(): (() => void) | undefined {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  try {
    setFlagsFromString("--expose-gc");
    return runInNewContext("gc") as () => void;
  } catch {
    return undefined;
  }
}

function verifierBench(templates: Template[], pairs: number, pendingEntries: number) {
  const year = new Date().getUTCFullYear();
  // Each side gets its own parsed copies, as the verifier does (JSON.parse on each side).
  const zBodies = templates.map((t) => JSON.parse(JSON.stringify(t.msg)) as unknown);
  const aBodies = templates.map((t) => JSON.parse(JSON.stringify(t.msg)) as unknown);
  const ids = Array.from({ length: pairs }, () => `${year}-${randomUUID()}`);
  const LAG = 1000; // the AMQP copy arrives 1,000 messages after the ZeroMQ one
  const MATCH_EVERY = 1000; // match() as the verifier's timer would call it

  const run = (n: number) => {
    const tracker = new VerifierTracker({ maxPending: 100_000 });
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    let events = 0;
    for (let i = 0; i < n + LAG; i++) {
      if (i < n) {
        const k = i % templates.length;
        tracker.seenZmq(ids[i]!, templates[k]!.topic, zBodies[k], start);
        events++;
      }
      if (i >= LAG) {
        const j = i - LAG;
        const k = j % templates.length;
        tracker.seenAmqp(ids[j]!, templates[k]!.topic, aBodies[k], start + 5);
        events++;
      }
      if (i % MATCH_EVERY === 0) tracker.match();
    }
    tracker.match();
    const ms = performance.now() - start;
    const cpu = process.cpuUsage(cpu0);
    const s = tracker.summary();
    if (s.matched !== n || s.mismatched !== 0) throw new Error(`bench: verifier matched ${s.matched}/${n}, mismatched ${s.mismatched}`);
    return { eventsPerS: events / (ms / 1000), pairsPerS: n / (ms / 1000), eventsPerCpuS: events / ((cpu.user + cpu.system) / 1e6), ms };
  };
  run(Math.min(pairs, 50_000)); // warm-up (JIT)
  // Best of three: a CPU-bound loop is only ever slowed by other work on the machine.
  const runs = [run(pairs), run(pairs), run(pairs)];
  const best = runs.reduce((x, y) => (y.eventsPerS > x.eventsPerS ? y : x));

  // Memory: one-sided entries (only the ZeroMQ copy seen), ids made fresh inside the measurement.
  const gc = collectGarbage();
  let bytesPerPending = NaN;
  if (gc) {
    gc();
    gc();
    const before = process.memoryUsage().heapUsed;
    const tracker = new VerifierTracker({ maxPending: pendingEntries });
    for (let i = 0; i < pendingEntries; i++) {
      const k = i % templates.length;
      tracker.seenZmq(`${year}-${randomUUID()}`, templates[k]!.topic, zBodies[k], 0);
    }
    gc();
    gc();
    const after = process.memoryUsage().heapUsed;
    if (tracker.size !== pendingEntries) throw new Error("bench: verifier lost pending entries");
    bytesPerPending = (after - before) / pendingEntries;
  }
  return { eventsPerS: best.eventsPerS, pairsPerS: best.pairsPerS, eventsPerCpuS: best.eventsPerCpuS, runs: runs.map((r) => round(r.eventsPerS)), bytesPerPending, gc: Boolean(gc) };
}

// (g) ------------------------------------------------------------------------------

let alarmSet = false;

function rabbitmqctl(...args: string[]): string {
  return execFileSync("rabbitmqctl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
}

function restoreWatermark() {
  if (!alarmSet) return;
  try {
    rabbitmqctl("set_vm_memory_high_watermark", "0.4");
    alarmSet = false;
  } catch (e) {
    process.stderr.write(`bench: COULD NOT RESTORE the memory watermark: run rabbitmqctl set_vm_memory_high_watermark 0.4 (${(e as Error).message})\n`);
  }
}

function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, "utf8").split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}
const kbToMb = (v: string | undefined) => (v ? Number.parseInt(v, 10) / 1024 : NaN);

/** The deepest descendant of `root` (or root) running the zmq_to_amqp command: npx → tsx → node. */
function bridgeProcess(root: number): number | undefined {
  const parent = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      /* gone */
    }
  }
  const depth = (pid: number): number => {
    let d = 0;
    for (let p: number | undefined = pid; p && p !== root; p = parent.get(p), d++) if (p === 1 || d > 20) return -1;
    return d;
  };
  let best: number | undefined;
  let bestDepth = -1;
  for (const pid of parent.keys()) {
    const d = depth(pid);
    if (d < 0) continue;
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue;
    }
    if (cmdline.includes("\0zmq_to_amqp\0") && d > bestDepth) [best, bestDepth] = [pid, d];
  }
  return best;
}

async function blockedRss(b: Bench, cli: string[], messages: number, bufferBoundBytes: number, maxMessages: number) {
  const exchange = unique("bench.g.x");
  const probeQueue = unique("bench.g.probe");
  const endpoint = `tcp://127.0.0.1:${freePort()}`;
  await b.ch.exchangeDeclare(exchange, "topic", { durable: true });
  await b.ch.queueDeclare(probeQueue, { durable: false, autoDelete: true });
  // Only the probe is routed: after the alarm the backlog drains as returns, not into the broker's memory.
  await b.ch.queueBind(probeQueue, exchange, PROBE_TOPIC);
  let probes = 0;
  const consumer = await b.ch.basicConsume(probeQueue, { noAck: true }, () => void probes++);
  const pub = new zmq.Publisher({ sendHighWaterMark: 0, linger: 0 });
  await pub.bind(endpoint);
  const child = spawn(cli[0]!, [...cli.slice(1), "zmq_to_amqp", "--zmq-endpoint", endpoint, "--exchange", exchange, "--amqp-url", AMQP_URL], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  const exited = new Promise<void>((r) => child.on("exit", () => (children.delete(child), r())));
  let status = { state: "", counters: {} as Record<string, number> };
  let statusLines = 0;
  const stderr: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const m = /^status zmq_to_amqp:main\s+(\S+)\s+(.*)$/.exec(line);
    if (!m) return;
    statusLines++;
    status = { state: m[1]!, counters: Object.fromEntries(m[2]!.split(/\s+/).map((kv) => kv.split("=")).filter((kv) => kv.length === 2).map(([k, v]) => [k!, Number(v)])) };
  });
  createInterface({ input: child.stderr! }).on("line", (line) => stderr.push(line));
  let bridgePid: number | undefined;
  let watcher: AMQPClient | undefined;
  let peakRss = 0;
  let sampler: ReturnType<typeof setInterval> | undefined;
  try {
    await eventually(() => {
      void pub.send(probeFrames());
      return probes > 0;
    }, "a probe to cross the zmq_to_amqp child", 60_000);
    bridgePid = bridgeProcess(child.pid!);
    if (!bridgePid) throw new Error(`bench: cannot find the zmq_to_amqp process started by ${cli.join(" ")}`);
    bridgePids.add(bridgePid);
    await sleep(500);
    const idleRss = kbToMb(procStatus(bridgePid).VmRSS);
    const pid = bridgePid;
    sampler = setInterval(() => {
      try {
        peakRss = Math.max(peakRss, kbToMb(procStatus(pid).VmRSS));
      } catch {
        /* exited */
      }
    }, 50);

    alarmSet = true;
    rabbitmqctl("set_vm_memory_high_watermark", "0.0000001");
    // The broker blocks a connection when it next publishes: a watcher publishing
    // (unroutable) messages shows when the alarm is in force.
    watcher = await connect("bench alarm watch");
    const watch = await watcher.channel();
    const w = watcher;
    await until(() => {
      if (!w.blocked) void watch.basicPublish("amq.topic", "bench.alarm.watch", "{}").catch(() => {});
      return Boolean(w.blocked);
    }, "connection.blocked from the broker", 30_000, 50);

    const year = new Date().getUTCFullYear();
    const sendStart = performance.now();
    for (let i = 0; i < messages; i++) {
      const t = b.templates[i % b.templates.length]!;
      await pub.send([t.topic, JSON.stringify(envelopeOf(t, `${year}-${randomUUID()}`, i))]);
    }
    const sendMs = performance.now() - sendStart;
    // The child prints its counters every 10 s: wait for one that has them all.
    const seenBefore = statusLines;
    await until(() => statusLines > seenBefore && (status.counters.received ?? 0) >= messages, `the child to report ${messages} received`, 60_000, 100);
    await sleep(1000);
    const st = procStatus(pid);
    const rss = kbToMb(st.VmRSS);
    peakRss = Math.max(peakRss, rss);
    const result = {
      rssMb: rss,
      peakRssMb: peakRss,
      hwmMb: kbToMb(st.VmHWM),
      idleRssMb: idleRss,
      bufferBoundMb: bufferBoundBytes / MB,
      bufferMaxMessages: maxMessages,
      sent: messages,
      sendMs,
      command: cli.join(" "),
      childState: status.state,
      counters: status.counters,
    };
    b.log(`(g) blocked: sent ${messages} in ${round(sendMs)} ms; child ${status.state} ${JSON.stringify(status.counters)}; RSS ${round(rss, 1)} MB (idle ${round(idleRss, 1)}, peak ${round(peakRss, 1)}, HWM ${round(result.hwmMb, 1)})`);
    return result;
  } finally {
    if (sampler) clearInterval(sampler);
    restoreWatermark();
    await watcher?.close().catch(() => {});
    killBridges("SIGTERM");
    child.kill("SIGTERM");
    // Wait for the bridge itself (npx may exit first): a bridge still draining would
    // declare its exchange again after the cleanup below.
    const alive = () => [...bridgePids].some((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    await until(() => !alive() && !children.has(child), "the zmq_to_amqp child to exit", 20_000, 50).catch(() => {
      killBridges("SIGKILL");
      child.kill("SIGKILL");
    });
    await Promise.race([exited, sleep(2000)]);
    bridgePids.clear();
    if (stderr.some((l) => /ERROR|fatal/.test(l))) b.log(`(g) child stderr (last lines):\n  ${stderr.slice(-5).join("\n  ")}`);
    pub.close();
    await b.ch.basicCancel(consumer.tag).catch(() => {});
    await dropTopology([probeQueue], [exchange]);
  }
}

function blockedJson(r: Awaited<ReturnType<typeof blockedRss>>) {
  return {
    rss_mb: round(r.rssMb, 1),
    peak_rss_mb: round(r.peakRssMb, 1),
    hwm_mb: round(r.hwmMb, 1),
    idle_rss_mb: round(r.idleRssMb, 1),
    buffer_bound_mb: round(r.bufferBoundMb, 1),
    buffer_max_messages: r.bufferMaxMessages,
    sent: r.sent,
    command: r.command,
    child_state: r.childState,
    child_counters: r.counters,
  };
}

// ─── Environment ───────────────────────────────────────────────────────────────

function versions() {
  const pkg = (name: string) => {
    try {
      return (JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), "utf8")) as { version: string }).version;
    } catch {
      return "unknown";
    }
  };
  let rabbitmq = "unknown";
  try {
    rabbitmq = rabbitmqctl("version").trim();
  } catch {
    /* not installed here */
  }
  const deno = (globalThis as { Deno?: { version: { deno: string } } }).Deno?.version.deno;
  return {
    runtime: deno ? `deno ${deno}` : `node ${process.versions.node}`,
    node: process.versions.node,
    v8: process.versions.v8,
    rabbitmq,
    libzmq: zmq.version,
    "@cloudamqp/amqp-client": pkg("@cloudamqp/amqp-client"),
    zeromq: pkg("zeromq"),
    xstate: pkg("xstate"),
    effect: pkg("effect"),
    tsx: pkg("tsx"),
    "fedmsg-migration-tools": (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version,
  };
}

function machine() {
  const cpus = os.cpus();
  return { cores: cpus.length, cpu: cpus[0]?.model ?? "unknown", mem_total_mb: Math.round(os.totalmem() / MB), platform: `${os.platform()} ${os.release()}`, arch: os.arch(), loadavg: os.loadavg().map((x) => round(x, 2)) };
}

// ─── Main ──────────────────────────────────────────────────────────────────────

const USAGE = `usage: npm run bench [-- options]
  --json FILE            also write the results as JSON
  --n N                  messages for (a)–(d) (default 50000)
  --rounds R             repeat (a)–(d) R times, report medians (default 3: one
                         run of each swings by up to 2x on a small machine)
  --window W             publisher window and prefetch (default: the manifest defaults)
  --bytes B              size of a fedmsg envelope (default 1024)
  --latency-rate R       offered msg/s for (e) (default 1000)
  --latency-seconds S    duration of (e) (default 10; the first second is warm-up)
  --verifier-pairs P     message pairs for (f) (default 500000)
  --pending P            pending entries for (f)'s memory figure (default 100000)
  --blocked-n N          messages sent while the broker blocks, (g) (default 100000)
  --cli CMD              how (g) starts the bridge; repeatable (default: "node
                         dist/fedmsg-migration-tools.mjs", built first, then
                         "npx tsx scripts/cli.ts"); the first is the headline
  --only LIST            run some of a,b,c,d,e,f,g (default all)
  --quiet-wait S         before each phase, wait up to S seconds for other work on
                         the machine to stop (default 30; 0 = never wait)
`;

async function main() {
  const { values } = parseArgs({
    options: {
      json: { type: "string" },
      n: { type: "string", default: "50000" },
      rounds: { type: "string", default: "3" },
      window: { type: "string" },
      bytes: { type: "string", default: "1024" },
      "latency-rate": { type: "string", default: "1000" },
      "latency-seconds": { type: "string", default: "10" },
      "verifier-pairs": { type: "string", default: "500000" },
      pending: { type: "string", default: "100000" },
      "blocked-n": { type: "string", default: "100000" },
      "quiet-wait": { type: "string", default: "30" },
      cli: { type: "string", multiple: true },
      only: { type: "string", default: "a,b,c,d,e,f,g" },
      peer: { type: "string" },
      endpoint: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const int = (v: string | undefined, flag: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`bench: ${flag} must be a positive whole number, got ${JSON.stringify(v)}`);
    return n;
  };
  const messageBytes = int(values.bytes, "--bytes");
  if (values.peer) {
    await runPeer(values.peer as PeerRole, values.endpoint!, messageBytes);
    return 0;
  }

  const only = new Set(values.only!.split(","));
  // The bridges' defaults, from the manifest schema.
  const defaults = manifestOf({
    brokers: { main: { url: AMQP_URL } },
    bridges: [
      { name: "in", kind: "zmq_to_amqp", zmq: { endpoints: ["tcp://127.0.0.1:1"] }, amqp: { broker: "main" } },
      { name: "out", kind: "amqp_to_zmq", amqp: { broker: "main" } },
    ],
  });
  const zIn = defaults.bridges[0]!;
  const aOut = defaults.bridges[1]!;
  if (zIn.kind !== "zmq_to_amqp" || aOut.kind !== "amqp_to_zmq") throw new Error("bench: unexpected manifest defaults");
  const window = values.window ? int(values.window, "--window") : zIn.window;
  const prefetch = values.window ? window : aOut.amqp.prefetch;
  const n = int(values.n, "--n");
  const rounds = int(values.rounds, "--rounds");
  const quietMs = Number(values["quiet-wait"]) * 1000;
  if (!Number.isFinite(quietMs) || quietMs < 0) throw new Error(`bench: --quiet-wait must be a number of seconds, got ${JSON.stringify(values["quiet-wait"])}`);
  const latency: LatencyOptions = { rate: int(values["latency-rate"], "--latency-rate"), seconds: int(values["latency-seconds"], "--latency-seconds"), warmupSeconds: 1 };

  const client = await connect("bench control");
  const ch = await client.channel();
  const templates = fittedTemplates(messageBytes);
  const frames = zmqFrames(templates, n);
  const b: Bench = {
    n,
    window,
    prefetch,
    messageBytes,
    templates,
    amqpMessages: asBridgeOutput(frames, "bench"),
    ch,
    client,
    log: (line) => process.stderr.write(line + "\n"),
  };
  const bodyBytes = b.amqpMessages.reduce((s, m) => s + m.body.byteLength, 0) / n;
  b.log(`bench: ${templates.length} sample bodies fitted to ${messageBytes}-byte envelopes (AMQP body ${round(bodyBytes)} bytes on average); N=${n}, window=${window}, prefetch=${prefetch}, ${os.cpus().length} cores`);

  const raw: Record<"publish_baseline" | "zmq_to_amqp" | "consume_baseline" | "amqp_to_zmq", PhaseResult[]> = { publish_baseline: [], zmq_to_amqp: [], consume_baseline: [], amqp_to_zmq: [] };
  const notes: string[] = [];
  // Let the broker finish the previous phase's disk work, then wait for other load to pass.
  const settle = async () => {
    await sleep(SETTLE_MS);
    if (quietMs > 0) await awaitQuiet(quietMs, b.log);
  };

  if (["a", "b", "c", "d", "e"].some((x) => only.has(x))) await settle();
  for (let r = 0; r < rounds; r++) {
    // Alternate the order, so a drift favours neither side.
    const flip = r % 2 === 1;
    type Phase = [string, () => Promise<unknown>];
    const ab: Phase[] = [["a", async () => raw.publish_baseline.push(await rawPublish(b))], ["b", async () => raw.zmq_to_amqp.push(await zmqToAmqpThroughput(b))]];
    const cd: Phase[] = [["c", async () => raw.consume_baseline.push(await rawConsume(b))], ["d", async () => raw.amqp_to_zmq.push(await amqpToZmqThroughput(b))]];
    for (const [name, phase] of flip ? [...ab.reverse(), ...cd.reverse()] : [...ab, ...cd]) {
      if (!only.has(name)) continue;
      await phase();
      await settle();
    }
  }

  let lat: Awaited<ReturnType<typeof zmqToAmqpLatency>> | undefined;
  let latConsumer: Awaited<ReturnType<typeof zmqToAmqpLatency>> | undefined;
  let latRaw: Awaited<ReturnType<typeof rawPublishLatency>> | undefined;
  if (only.has("e")) {
    latRaw = await rawPublishLatency(b, latency);
    b.log(`(e) raw publish at ${latency.rate} msg/s, publish → confirm ms: ${JSON.stringify(latRaw)}`);
    await settle();
    lat = await zmqToAmqpLatency(b, latency, false);
    b.log(`(e) zmq_to_amqp at ${round(lat.offered)} msg/s, ZeroMQ send → confirm ms (queue without consumer): ${JSON.stringify(lat.confirm)}; event-loop delay ${JSON.stringify(lat.loop)}; ${cpuText(lat.cpu, "bench+bridge")}`);
    await settle();
    latConsumer = await zmqToAmqpLatency(b, latency, true);
    b.log(`(e) zmq_to_amqp at ${round(latConsumer.offered)} msg/s with a consumer: send → confirm ${JSON.stringify(latConsumer.confirm)}; send → arrival ${JSON.stringify(latConsumer.arrival)}`);
  }

  let verifier: ReturnType<typeof verifierBench> | undefined;
  if (only.has("f")) {
    await settle();
    verifier = verifierBench(templates, int(values["verifier-pairs"], "--verifier-pairs"), int(values.pending, "--pending"));
    if (!verifier.gc) notes.push("verifier.bytes_per_pending needs a collectable heap: run under node (or deno with --v8-flags=--expose-gc)");
    b.log(`(f) verifier: ${round(verifier.eventsPerS)} events/s (${round(verifier.pairsPerS)} pairs/s), ${round(verifier.bytesPerPending)} bytes per pending entry`);
  }

  const blockedRuns: Awaited<ReturnType<typeof blockedRss>>[] = [];
  if (only.has("g")) {
    const clis = values.cli ?? [`node ${relative(ROOT, await buildBundle())}`, "npx tsx scripts/cli.ts"];
    for (const cli of clis) {
      await settle();
      blockedRuns.push(await blockedRss(b, cli.split(" ").filter(Boolean), int(values["blocked-n"], "--blocked-n"), zIn.buffer.max_bytes, zIn.buffer.max_messages));
    }
  }
  const blocked = blockedRuns[0];

  await client.close().catch(() => {});

  const med = (k: keyof typeof raw) => (raw[k].length ? median(raw[k].map((p) => p.rate)) : NaN);
  const a = med("publish_baseline");
  const bb = med("zmq_to_amqp");
  const c = med("consume_baseline");
  const d = med("amqp_to_zmq");
  const perRound = (x: PhaseResult[], y: PhaseResult[]) => x.map((p, i) => (y[i] ? round(p.rate / y[i]!.rate, 3) : NaN));
  const result = {
    time: new Date().toISOString(),
    params: { n, rounds, window, prefetch, envelope_bytes: messageBytes, amqp_body_bytes: round(bodyBytes), latency_rate: latency.rate, latency_seconds: latency.seconds, latency_warmup_seconds: latency.warmupSeconds, blocked_n: int(values["blocked-n"], "--blocked-n") },
    machine: machine(),
    versions: versions(),
    raw: {
      publish_baseline_msg_s: round(a),
      zmq_to_amqp_msg_s: round(bb),
      consume_baseline_msg_s: round(c),
      amqp_to_zmq_msg_s: round(d),
      rounds: Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v.map((p) => ({ msg_s: round(p.rate), cpu: p.cpu }))])),
      ratios_per_round: { zmq_to_amqp: perRound(raw.zmq_to_amqp, raw.publish_baseline), amqp_to_zmq: perRound(raw.amqp_to_zmq, raw.consume_baseline) },
    },
    ratios: { zmq_to_amqp: round(bb / a, 3), amqp_to_zmq: round(d / c, 3) },
    latency_ms: lat
      ? {
          measured: "ZeroMQ send (bench PUB, same process) → broker confirm seen by the bridge (PublishBuffer.confirm), bound durable queue without consumer",
          offered_msg_s: round(lat.offered, 1),
          ...lat.confirm,
          event_loop_delay_ms: lat.loop,
          cpu: lat.cpu,
          with_consumer: { confirm: latConsumer!.confirm, arrival_at_consumer: latConsumer!.arrival, event_loop_delay_ms: latConsumer!.loop, cpu: latConsumer!.cpu },
          raw_publish_baseline: latRaw,
        }
      : undefined,
    verifier: verifier
      ? {
          events_per_s: round(verifier.eventsPerS),
          pairs_per_s: round(verifier.pairsPerS),
          events_per_cpu_s: round(verifier.eventsPerCpuS),
          events_per_s_runs: verifier.runs,
          bytes_per_pending: round(verifier.bytesPerPending),
          measured: "VerifierTracker in process: seenZmq + seenAmqp per pair (the AMQP copy 1,000 messages behind), match() every 1,000; best of 3 runs after a warm-up; memory = heap growth per one-sided entry after GC, ids made fresh",
        }
      : undefined,
    blocked: blocked ? { ...blockedJson(blocked), other_commands: blockedRuns.slice(1).map(blockedJson) } : undefined,
    targets: {
      ratios_min: TARGETS.ratio,
      latency_p99_ms_max: TARGETS.p99Ms,
      verifier_events_per_s_min: TARGETS.eventsPerS,
      verifier_bytes_per_pending_max: TARGETS.bytesPerPending,
      blocked_rss_mb_max: blocked ? round(blocked.bufferBoundMb + TARGETS.rssOverBoundMb, 1) : undefined,
    },
    pass: {
      zmq_to_amqp: Number.isNaN(bb / a) ? undefined : bb / a >= TARGETS.ratio,
      amqp_to_zmq: Number.isNaN(d / c) ? undefined : d / c >= TARGETS.ratio,
      latency: lat ? lat.confirm.p99 <= TARGETS.p99Ms : undefined,
      verifier_rate: verifier ? verifier.eventsPerS >= TARGETS.eventsPerS : undefined,
      verifier_memory: verifier ? verifier.bytesPerPending <= TARGETS.bytesPerPending : undefined,
      blocked_rss: blocked ? blocked.peakRssMb <= blocked.bufferBoundMb + TARGETS.rssOverBoundMb : undefined,
    },
    notes,
  };

  const mark = (ok: boolean | undefined) => (ok === undefined ? "" : ok ? "ok" : "MISS");
  const rows: [string, string, string, string][] = [];
  // CPU per message, median over rounds: where a throughput difference comes from.
  const cpuCell = (x: PhaseResult[], self: string) => {
    if (!x.length) return "";
    const m = (f: (c: CpuReport) => number | undefined) => round(median(x.map((p) => f(p.cpu) ?? 0)), 1);
    const peer = x[0]!.cpu.us_per_msg.peer !== undefined ? ` peer ${m((c) => c.us_per_msg.peer)}` : "";
    return `cpu µs/msg: ${self} ${m((c) => c.us_per_msg.self)}${peer} broker ${m((c) => c.us_per_msg.broker)}; other load ${m((c) => c.other_cores)} cores`;
  };
  if (raw.publish_baseline.length) rows.push(["(a) raw publish baseline", `${round(a)} msg/s`, "", cpuCell(raw.publish_baseline, "client")]);
  if (raw.zmq_to_amqp.length) rows.push(["(b) zmq_to_amqp", `${round(bb)} msg/s`, "", cpuCell(raw.zmq_to_amqp, "bridge")]);
  if (raw.publish_baseline.length && raw.zmq_to_amqp.length) rows.push(["    ratio b/a", `${result.ratios.zmq_to_amqp}`, `≥ ${TARGETS.ratio}`, mark(result.pass.zmq_to_amqp)]);
  if (raw.consume_baseline.length) rows.push(["(c) raw consume baseline", `${round(c)} msg/s`, "", cpuCell(raw.consume_baseline, "client")]);
  if (raw.amqp_to_zmq.length) rows.push(["(d) amqp_to_zmq", `${round(d)} msg/s`, "", cpuCell(raw.amqp_to_zmq, "bridge")]);
  if (raw.consume_baseline.length && raw.amqp_to_zmq.length) rows.push(["    ratio d/c", `${result.ratios.amqp_to_zmq}`, `≥ ${TARGETS.ratio}`, mark(result.pass.amqp_to_zmq)]);
  if (lat) {
    rows.push(
      [`(e) send→confirm @${round(lat.offered)}/s p50`, `${lat.confirm.p50} ms`, "", ""],
      ["    p99", `${lat.confirm.p99} ms`, `≤ ${TARGETS.p99Ms} ms`, mark(result.pass.latency)],
      ["    max", `${lat.confirm.max} ms`, "", ""],
      ["    with consumer: confirm p99 / arrival p99", `${latConsumer!.confirm.p99} / ${latConsumer!.arrival!.p99} ms`, "", ""],
      ["    raw client publish→confirm p50/p99/max", `${latRaw!.p50} / ${latRaw!.p99} / ${latRaw!.max} ms`, "", ""],
    );
  }
  if (verifier) {
    rows.push(
      ["(f) verifier matching", `${round(verifier.eventsPerS)} events/s`, `≥ ${TARGETS.eventsPerS}`, `${mark(result.pass.verifier_rate)} (${round(verifier.eventsPerCpuS)} per CPU-second)`],
      ["    memory per pending entry", `${round(verifier.bytesPerPending)} bytes`, `≤ ${TARGETS.bytesPerPending}`, mark(result.pass.verifier_memory)],
    );
  }
  if (blocked) {
    rows.push([`(g) RSS, broker blocked, ${blocked.sent} in`, `${round(blocked.rssMb, 1)} MB (peak ${round(blocked.peakRssMb, 1)})`, `≤ ${round(blocked.bufferBoundMb + TARGETS.rssOverBoundMb)} MB`, `${mark(result.pass.blocked_rss)} (${blocked.command}; idle ${round(blocked.idleRssMb, 1)} MB)`]);
    for (const other of blockedRuns.slice(1)) rows.push(["    the same through another command", `${round(other.rssMb, 1)} MB (peak ${round(other.peakRssMb, 1)})`, "", `${other.command}; idle ${round(other.idleRssMb, 1)} MB`]);
    rows.push(
      ["    buffer bound (buffer.max_bytes)", `${round(blocked.bufferBoundMb, 1)} MB, ${blocked.bufferMaxMessages} messages`, "", ""],
    );
  }
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(`\nfedmsg-migration-tools bench  ${result.time}  ${result.versions.runtime}, RabbitMQ ${result.versions.rabbitmq}, ${result.machine.cores} cores\n`);
  process.stdout.write(`N=${n} window=${window} prefetch=${prefetch} envelope=${messageBytes} B rounds=${rounds}\n\n`);
  for (const r of rows) process.stdout.write(`${r[0]!.padEnd(w[0]!)}  ${r[1]!.padStart(w[1]!)}  ${r[2]!.padEnd(w[2]!)}  ${r[3]}\n`);
  for (const note of notes) process.stdout.write(`note: ${note}\n`);
  if (values.json) {
    writeFileSync(values.json, JSON.stringify(result, null, 2) + "\n");
    process.stdout.write(`\nwrote ${values.json}\n`);
  }
  return 0;
}

function cleanupAndExit(code: number) {
  restoreWatermark();
  killBridges("SIGKILL");
  for (const child of children) child.kill("SIGKILL");
  process.exit(code);
}

if (!process.argv.includes("--peer")) {
  process.on("SIGINT", () => cleanupAndExit(130));
  process.on("SIGTERM", () => cleanupAndExit(143));
  process.on("exit", () => {
    restoreWatermark();
    killBridges("SIGKILL");
    for (const child of children) child.kill("SIGKILL");
  });
}

main().then(
  (code) => (process.argv.includes("--peer") ? undefined : cleanupAndExit(code)),
  (error: Error) => {
    process.stderr.write(`${error.stack ?? error.message}\n`);
    cleanupAndExit(1);
  },
);
