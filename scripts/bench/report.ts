// The results: the result JSON (medians, ratios, targets, pass/fail), the printed table and the JSON file.
import { writeFileSync } from "node:fs";
import { blockedJson, type blockedRss } from "./blocked.ts";
import type { CpuReport, PhaseResult } from "./cpu.ts";
import { machine, versions } from "./environment.ts";
import type { LatencyOptions, rawPublishLatency, zmqToAmqpLatency } from "./latency.ts";
import { median, round } from "./util.ts";
import type { verifierBench } from "./verifier.ts";

const TARGETS = { ratio: 0.9, p99Ms: 10, eventsPerS: 200_000, bytesPerPending: 1024, rssOverBoundMb: 80 };

/** Each phase of (a)–(d), one result per round. */
export type RawRounds = Record<"publish_baseline" | "zmq_to_amqp" | "consume_baseline" | "amqp_to_zmq", PhaseResult[]>;

/** What main() measured, and with what parameters. */
export interface Measurements {
  n: number;
  rounds: number;
  /** Messages of the discarded warm-up run of (a)–(d); 0 = none. */
  warmup: number;
  window: number;
  prefetch: number;
  messageBytes: number;
  bodyBytes: number;
  latency: LatencyOptions;
  blockedN: number;
  raw: RawRounds;
  lat: Awaited<ReturnType<typeof zmqToAmqpLatency>> | undefined;
  latConsumer: Awaited<ReturnType<typeof zmqToAmqpLatency>> | undefined;
  latRaw: Awaited<ReturnType<typeof rawPublishLatency>> | undefined;
  verifier: ReturnType<typeof verifierBench> | undefined;
  blockedRuns: Awaited<ReturnType<typeof blockedRss>>[];
  notes: string[];
}

/** Builds the result, prints the table (and the notes) on stdout and, with `json`, writes the result there. */
export function report(m: Measurements, json: string | undefined) {
  const { n, rounds, warmup, window, prefetch, messageBytes, bodyBytes, latency, raw, lat, latConsumer, latRaw, verifier, blockedRuns, notes } = m;
  const blocked = blockedRuns[0];

  const med = (k: keyof typeof raw) => (raw[k].length ? median(raw[k].map((p) => p.rate)) : NaN);
  const a = med("publish_baseline");
  const bb = med("zmq_to_amqp");
  const c = med("consume_baseline");
  const d = med("amqp_to_zmq");
  const perRound = (x: PhaseResult[], y: PhaseResult[]) => x.map((p, i) => (y[i] ? round(p.rate / y[i]!.rate, 3) : NaN));
  const result = {
    time: new Date().toISOString(),
    params: { n, rounds, warmup, window, prefetch, envelope_bytes: messageBytes, amqp_body_bytes: round(bodyBytes), latency_rate: latency.rate, latency_seconds: latency.seconds, latency_warmup_seconds: latency.warmupSeconds, blocked_n: m.blockedN },
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
  if (json) {
    writeFileSync(json, JSON.stringify(result, null, 2) + "\n");
    process.stdout.write(`\nwrote ${json}\n`);
  }
}
