// Test support for the HTTP endpoint: a full topology (both bridges and a
// verifier) on the simulated transports, with the HTTP server on a free port.
import { SimBroker, simTransports } from "../../actors/sim/index.ts";
import { startHttpServer, type HttpServer } from "../../actors/http.ts";
import type { ZmqPublisher } from "../../actors/transport.ts";
import { startSystem } from "./system.ts";

export const FEDMSG_ENDPOINT = "tcp://127.0.0.1:9940";
export const OUT_ENDPOINT = "tcp://127.0.0.1:9941";

export interface SimTopology {
  run: ReturnType<typeof startSystem>;
  broker: SimBroker;
  /** The upstream fedmsg publisher the zmq_to_amqp bridge subscribes to. */
  upstream: ZmqPublisher;
  http: HttpServer;
  get(path: string): Promise<{ status: number; type: string; body: string }>;
  metric(text: string, series: string): number | undefined;
  stop(): Promise<void>;
}

/** Brokers `main` at `url`, bridges `in` (zmq_to_amqp) and `out` (amqp_to_zmq), verifier `v`. */
export async function startSimTopology(options: { url?: string; broker?: SimBroker; pushIntervalMs?: number } = {}): Promise<SimTopology> {
  const broker = options.broker ?? new SimBroker();
  const t = simTransports(broker);
  const upstream = await t.bus.publish(FEDMSG_ENDPOINT, true);
  const run = startSystem(
    {
      brokers: { main: { url: options.url ?? "amqp://guest:guest@sim/%2F" } },
      bridges: [
        { name: "in", kind: "zmq_to_amqp", zmq: { endpoints: [FEDMSG_ENDPOINT] }, amqp: { broker: "main", exchange: "zmq.topic" } },
        { name: "out", kind: "amqp_to_zmq", zmq: { publish_endpoint: OUT_ENDPOINT }, amqp: { broker: "main", exchange: "amq.topic" } },
      ],
      verifiers: [{ name: "v", zmq: { endpoints: [FEDMSG_ENDPOINT, OUT_ENDPOINT] }, amqp: { broker: "main", exchanges: ["zmq.topic", "amq.topic"] }, match_interval: 0.05 }],
      shutdown: { drain_timeout_ms: 2000 },
    },
    t,
  );
  const http = await startHttpServer({ listen: "127.0.0.1:0", system: run.system, processMetrics: false, pushIntervalMs: options.pushIntervalMs ?? 100 });
  return {
    run,
    broker,
    upstream,
    http,
    async get(path) {
      const res = await fetch(http.url + path);
      return { status: res.status, type: res.headers.get("content-type") ?? "", body: await res.text() };
    },
    metric(text, series) {
      const line = text.split("\n").find((l) => l.startsWith(series + " "));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    },
    async stop() {
      await http.close();
      upstream.close();
      await run.stop();
    },
  };
}

/** Resolves with the first truthy result of `check`, polling every 20 ms; rejects naming `what` after `timeout`. */
export async function until<T>(check: () => Promise<T | undefined | false>, what: string, timeout = 10_000): Promise<T> {
  const start = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() - start > timeout) throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let n = 0;
/** A valid fedmsg envelope as the two frames of a ZeroMQ message. */
export function fedmsg(extra: Record<string, unknown> = {}): [string, string] {
  n++;
  const topic = "org.fedoraproject.test.http.message";
  return [topic, JSON.stringify({ topic, msg: { n }, msg_id: `2026-http-${process.pid}-${n}`, timestamp: 1764300000, i: n, username: "tester", ...extra })];
}
