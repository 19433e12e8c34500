// CPU accounting from /proc: per-message CPU of this process, the peer and the broker, other load, and waiting for quiet.
import { readFileSync, readdirSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { round, sleep } from "./util.ts";

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

export interface CpuReport {
  wall_ms: number;
  /** CPU µs per message: this process (client or bridge), the ZeroMQ peer, the broker. */
  us_per_msg: { self: number; peer?: number; broker: number };
  /** Mean cores busy with other work during the phase (0–cores). */
  other_cores: number;
}

export function cpuMeter(peerPid?: number) {
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
export async function awaitQuiet(maxMs: number, log: (line: string) => void, threshold = 0.25): Promise<number> {
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

export interface PhaseResult {
  rate: number;
  cpu: CpuReport;
}

export const cpuText = (c: CpuReport, self: string) =>
  `cpu µs/msg: ${self} ${c.us_per_msg.self}${c.us_per_msg.peer !== undefined ? `, peer ${c.us_per_msg.peer}` : ""}, broker ${c.us_per_msg.broker}; other load ${c.other_cores} cores`;
