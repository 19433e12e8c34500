// Phase (g): zmq_to_amqp's RSS under a broker memory alarm, and the rabbitmqctl watermark helpers (alarmSet, restoreWatermark).
import { execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { readFileSync, readdirSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import * as zmq from "zeromq";
import type { AMQPClient } from "@cloudamqp/amqp-client";
import { AMQP_URL, eventually, freePort, unique } from "../../test/support/system.ts";
import type { Bench } from "./context.ts";
import { PROBE_TOPIC, envelopeOf, probeFrames } from "./messages.ts";
import { bridgePids, children, killBridges } from "./peer.ts";
import { MB, ROOT, connect, dropTopology, round, sleep, until } from "./util.ts";

export let alarmSet = false;

export function rabbitmqctl(...args: string[]): string {
  return execFileSync("rabbitmqctl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
}

export function restoreWatermark() {
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

export async function blockedRss(b: Bench, cli: string[], messages: number, bufferBoundBytes: number, maxMessages: number) {
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

export function blockedJson(r: Awaited<ReturnType<typeof blockedRss>>) {
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
