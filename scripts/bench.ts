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
import { relative } from "node:path";
import os from "node:os";
import { buildBundle } from "./build.ts";
import { AMQP_URL, manifestOf } from "../test/support/system.ts";
import { blockedRss, restoreWatermark } from "./bench/blocked.ts";
import type { Bench } from "./bench/context.ts";
import { awaitQuiet, cpuText } from "./bench/cpu.ts";
import { type LatencyOptions, rawPublishLatency, zmqToAmqpLatency } from "./bench/latency.ts";
import { asBridgeOutput, fittedTemplates, zmqFrames } from "./bench/messages.ts";
import { children, killBridges, runPeer, type PeerRole } from "./bench/peer.ts";
import { type RawRounds, report } from "./bench/report.ts";
import { amqpToZmqThroughput, rawConsume, rawPublish, zmqToAmqpThroughput } from "./bench/throughput.ts";
import { ROOT, SETTLE_MS, connect, round, sleep } from "./bench/util.ts";
import { verifierBench } from "./bench/verifier.ts";

const USAGE = `usage: npm run bench [-- options]
  --json FILE            also write the results as JSON
  --n N                  messages for (a)–(d) (default 50000)
  --rounds R             repeat (a)–(d) R times, report medians (default 3: one
                         run of each swings by up to 2x on a small machine)
  --warmup N             before the rounds, run (a)–(d) once with N messages and
                         discard the figures (default 10000; 0 = no warm-up)
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
      warmup: { type: "string", default: "10000" },
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

  const raw: RawRounds = { publish_baseline: [], zmq_to_amqp: [], consume_baseline: [], amqp_to_zmq: [] };
  const notes: string[] = [];
  // Let the broker finish the previous phase's disk work, then wait for other load to pass.
  const settle = async () => {
    await sleep(SETTLE_MS);
    if (quietMs > 0) await awaitQuiet(quietMs, b.log);
  };

  if (["a", "b", "c", "d", "e"].some((x) => only.has(x))) await settle();
  const warmup = Number(values.warmup);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`bench: --warmup must be a whole number, got ${JSON.stringify(values.warmup)}`);
  if (warmup > 0) {
    // The first run of each phase is the slowest (JIT, the broker's own warm-up):
    // run them all once, smaller, and discard the figures.
    const w = Math.min(warmup, n);
    const warm: Bench = { ...b, n: w, amqpMessages: b.amqpMessages.slice(0, w), log: (line) => b.log(`warm-up (discarded) ${line}`) };
    const phases: [string, (x: Bench) => Promise<unknown>][] = [["a", rawPublish], ["b", zmqToAmqpThroughput], ["c", rawConsume], ["d", amqpToZmqThroughput]];
    for (const [name, phase] of phases) {
      if (!only.has(name)) continue;
      await phase(warm);
      await settle();
    }
  }
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

  await client.close().catch(() => {});

  report(
    {
      n,
      rounds,
      warmup,
      window,
      prefetch,
      messageBytes,
      bodyBytes,
      latency,
      blockedN: int(values["blocked-n"], "--blocked-n"),
      raw,
      lat,
      latConsumer,
      latRaw,
      verifier,
      blockedRuns,
      notes,
    },
    values.json,
  );
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
