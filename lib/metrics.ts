// /metrics: Prometheus text from prom-client, computed at scrape time from the
// live actor tree (BridgeStats, PublishBuffer, the verifier's tracker, each
// actor's state). Nothing here runs per message: counters are read, not bumped.
//
// The counters are prom-client Counters whose `collect()` (documented for every
// metric type) resets them and adds the current totals, so they keep their
// `_total` names and `# TYPE … counter`. A counter restarts from 0 when its
// actor is restarted by the supervisor, which Prometheus' rate() treats as a
// counter reset. Each call makes its own Registry, never the global one.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues, type MetricObjectWithValues, type MetricValueWithName } from "prom-client";
import type { AnyActorRef, AnyStateMachine } from "xstate";
import { BridgeStats } from "./stats.ts";
import { PublishBuffer } from "./publish-buffer.ts";
import { LatencyHistogram } from "./latency.ts";
import { redactText } from "./redact.ts";
import type { VerifierSummary } from "./verifier-tracker.ts";
import { describeMachine, type StateModel } from "./diagram.ts";
import { machineOf, stateOf, walkActors, type Inspectable } from "./actor-watch.ts";

export interface BridgeReading {
  /** The actor id, e.g. `zmq_to_amqp:from-fedmsg`: the `bridge` label. */
  id: string;
  kind: "zmq_to_amqp" | "amqp_to_zmq";
  stats: BridgeStats;
  /** zmq_to_amqp: messages held until confirmed; amqp_to_zmq: deliveries on the socket not yet acked. */
  buffered: number;
  bufferedBytes?: number;
  /** zmq_to_amqp only: publishes awaiting their confirm. */
  inflight?: number;
  latency?: LatencyHistogram;
}

export interface VerifierReading {
  /** The actor id, e.g. `verify:main`: the `verifier` label. */
  id: string;
  summary: VerifierSummary;
}

export interface ActorReading {
  id: string;
  machine: string;
  state: string;
  /** Every state the machine can be in (leaf paths), for the 0-valued series; [] for non-machines. */
  states: string[];
}

export interface TreeReading {
  bridges: BridgeReading[];
  verifiers: VerifierReading[];
  actors: ActorReading[];
  connections: { id: string; reconnects: number }[];
}

const leafPaths = new WeakMap<object, string[]>();

/** Leaf state paths (`open.ready`), the same strings as lib/status.ts stateString gives for a state value. */
function statesOf(ref: AnyActorRef): string[] {
  const logic = (ref as unknown as { logic?: AnyStateMachine }).logic;
  if (!logic || !("root" in logic) || !logic.root) return [];
  let paths = leafPaths.get(logic);
  if (!paths) {
    paths = [];
    const visit = (s: StateModel) => {
      if (s.states.length === 0 || s.type === "parallel") {
        if (s.path) paths!.push(s.path);
        return;
      }
      s.states.forEach(visit);
    };
    visit(describeMachine(logic).root);
    leafPaths.set(logic, paths);
  }
  return paths;
}

function summaryOf(ref: AnyActorRef | undefined): VerifierSummary | undefined {
  const snapshot = ref?.getSnapshot() as Inspectable | undefined;
  const tracker = snapshot?.context?.tracker as { summary?: () => VerifierSummary } | undefined;
  return typeof tracker?.summary === "function" ? tracker.summary() : undefined;
}

/** One walk of the tree: everything /metrics reports, read in place. */
export function readTree(system: AnyActorRef): TreeReading {
  const reading: TreeReading = { bridges: [], verifiers: [], actors: [], connections: [] };
  for (const node of walkActors(system)) {
    const snapshot = node.ref.getSnapshot() as Inspectable;
    const ctx = snapshot.context ?? {};
    const id = redactText(node.id);
    reading.actors.push({ id, machine: machineOf(node.ref), state: redactText(stateOf(node.ref)), states: statesOf(node.ref) });
    if (ctx.stats instanceof BridgeStats && (node.id.startsWith("zmq_to_amqp:") || node.id.startsWith("amqp_to_zmq:"))) {
      const stats = ctx.stats;
      // Read duck-typed so this works whether or not BridgeStats carries a latency histogram yet.
      const latency = (stats as unknown as { latency?: unknown }).latency;
      const bridge: BridgeReading = {
        id,
        kind: node.id.startsWith("zmq_to_amqp:") ? "zmq_to_amqp" : "amqp_to_zmq",
        stats,
        buffered: 0,
        latency: latency instanceof LatencyHistogram ? latency : undefined,
      };
      if (ctx.buffer instanceof PublishBuffer) {
        bridge.buffered = ctx.buffer.size;
        bridge.bufferedBytes = ctx.buffer.bytes;
        bridge.inflight = ctx.buffer.inflightCount;
      } else {
        const link = ctx.link as { pending?: number } | undefined;
        bridge.buffered = link?.pending ?? 0;
      }
      reading.bridges.push(bridge);
    }
    if (node.id.startsWith("verify:")) {
      const summary = summaryOf(snapshot.children?.core) ?? (ctx.finalSummary as VerifierSummary | undefined);
      if (summary) reading.verifiers.push({ id, summary });
    }
    if (machineOf(node.ref) === "amqpConnection" && typeof ctx.reconnects === "number") {
      reading.connections.push({ id, reconnects: ctx.reconnects });
    }
  }
  return reading;
}

/**
 * fedmsg_bridge_latency_seconds: the buckets live in each bridge's BridgeStats
 * (lib/latency.ts, observed per message in O(1)); this renders them at scrape
 * time as one prom-client histogram with a `bridge` label.
 */
class TreeHistogram extends Histogram<"bridge"> {
  constructor(
    private readonly metricName: string,
    private readonly metricHelp: string,
    private readonly read: () => TreeReading,
    registry: Registry,
  ) {
    super({ name: metricName, help: metricHelp, labelNames: ["bridge"], registers: [registry] });
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<"bridge">>> {
    const values: MetricValueWithName<"bridge">[] = [];
    for (const bridge of this.read().bridges) {
      const h = bridge.latency;
      if (!h) continue;
      let cumulative = 0;
      h.bounds.forEach((le, i) => {
        cumulative += h.counts[i]!;
        values.push({ metricName: `${this.metricName}_bucket`, labels: { bridge: bridge.id, le } as LabelValues<"bridge">, value: cumulative });
      });
      values.push({ metricName: `${this.metricName}_bucket`, labels: { bridge: bridge.id, le: "+Inf" } as LabelValues<"bridge">, value: h.count });
      values.push({ metricName: `${this.metricName}_sum`, labels: { bridge: bridge.id }, value: h.sum });
      values.push({ metricName: `${this.metricName}_count`, labels: { bridge: bridge.id }, value: h.count });
    }
    // prom-client's typings say MetricType is a numeric enum; at run time (and in the text) it is the string.
    return { name: this.metricName, help: this.metricHelp, type: "histogram" as never, values, aggregator: "sum", collect: () => {} };
  }

  /** What prom-client's Registry renders a histogram from (it prefers this to get()). */
  async getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<"bridge">>> {
    return this.get();
  }
}

export interface MetricsOptions {
  /** Node's process metrics (process_*, nodejs_*) as well. Default true. */
  processMetrics?: boolean;
}

export interface Metrics {
  registry: Registry;
  contentType: string;
  /** The exposition text (one walk of the actor tree, shared by every metric). */
  render(): Promise<string>;
}

/** A registry of this process' metrics, read from `system` (the root actor) at each scrape. */
export function createMetrics(system: AnyActorRef, options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  // One walk per scrape: the registry collects every metric in one synchronous
  // pass, so the first one reads the tree and the rest reuse it until that pass ends.
  let current: TreeReading | undefined;
  const read = (): TreeReading => {
    if (!current) {
      current = readTree(system);
      queueMicrotask(() => (current = undefined));
    }
    return current;
  };

  type Source<L extends string> = (reading: TreeReading) => Iterable<[LabelValues<L>, number]>;
  const counter = <L extends string>(name: string, help: string, labelNames: L[], source: Source<L>) =>
    new Counter<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const [labels, value] of source(read())) this.inc(labels, value);
      },
    });
  const gauge = <L extends string>(name: string, help: string, labelNames: L[], source: Source<L>) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const [labels, value] of source(read())) this.set(labels, value);
      },
    });

  const perBridge = (value: (b: BridgeReading) => number | undefined): Source<"bridge"> =>
    function* (r) {
      for (const b of r.bridges) {
        const v = value(b);
        if (v !== undefined) yield [{ bridge: b.id }, v];
      }
    };
  const perVerifier = (value: (s: VerifierSummary) => number): Source<"verifier"> =>
    function* (r) {
      for (const v of r.verifiers) yield [{ verifier: v.id }, value(v.summary)];
    };

  counter("fedmsg_bridge_messages_received_total", "Messages that entered the bridge (ZeroMQ messages or AMQP deliveries).", ["bridge"], perBridge((b) => b.stats.received));
  counter("fedmsg_bridge_messages_forwarded_total", "Messages delivered on the other side: confirmed by the broker (zmq_to_amqp) or handed to the PUB socket (amqp_to_zmq).", ["bridge"], perBridge((b) => b.stats.forwarded));
  counter("fedmsg_bridge_messages_dropped_total", "Messages dropped, by reason (invalid input, loop prevention, buffer overflow, …).", ["bridge", "reason"], function* (r) {
    for (const b of r.bridges) for (const [reason, n] of b.stats.dropped) yield [{ bridge: b.id, reason: redactText(reason) }, n];
  });
  counter("fedmsg_bridge_duplicates_total", "Messages published or delivered again (after a reconnect, nack or redelivery): possible duplicates downstream.", ["bridge"], perBridge((b) => b.stats.duplicates));
  counter("fedmsg_bridge_returned_total", "Mandatory publishes the broker returned as unroutable (no queue bound).", ["bridge"], perBridge((b) => b.stats.returned));
  counter("fedmsg_bridge_refused_total", "Publishes the broker refused (403 ACCESS_REFUSED, e.g. topic authorization): held for a retry or dead-lettered, by the bridge's on_refused.", ["bridge"], perBridge((b) => b.stats.refused));
  counter("fedmsg_bridge_reconnects_total", "Times the bridge lost its AMQP channel and had to wait for it again.", ["bridge"], perBridge((b) => b.stats.reconnects));
  gauge("fedmsg_bridge_buffer_messages", "Messages the bridge holds: not yet confirmed (zmq_to_amqp) or on the socket and not yet acked (amqp_to_zmq).", ["bridge"], perBridge((b) => b.buffered));
  gauge("fedmsg_bridge_buffer_bytes", "Bytes of message bodies in the zmq_to_amqp buffer.", ["bridge"], perBridge((b) => b.bufferedBytes));
  gauge("fedmsg_bridge_inflight_confirms", "Publishes awaiting their broker confirm (zmq_to_amqp).", ["bridge"], perBridge((b) => b.inflight));
  new TreeHistogram("fedmsg_bridge_latency_seconds", "Seconds from a message entering the bridge to its broker confirm (zmq_to_amqp) or its send on the PUB socket (amqp_to_zmq).", read, registry);

  counter("fedmsg_verifier_matched_total", "Messages seen on both sides.", ["verifier"], perVerifier((s) => s.matched));
  counter("fedmsg_verifier_missing_total", "Messages seen on one side only, by the side they are missing from (amqp or zmq).", ["verifier", "side"], function* (r) {
    for (const v of r.verifiers) {
      yield [{ verifier: v.id, side: "amqp" }, v.summary.missingAmqp];
      yield [{ verifier: v.id, side: "zmq" }, v.summary.missingZmq];
    }
  });
  counter("fedmsg_verifier_mismatched_total", "Messages seen on both sides with different content.", ["verifier"], perVerifier((s) => s.mismatched));
  counter("fedmsg_verifier_duplicates_total", "Second copies of a message on the same side.", ["verifier", "side"], function* (r) {
    for (const v of r.verifiers) {
      yield [{ verifier: v.id, side: "amqp" }, v.summary.duplicatesAmqp];
      yield [{ verifier: v.id, side: "zmq" }, v.summary.duplicatesZmq];
    }
  });
  gauge("fedmsg_verifier_pending", "Messages seen on one side and still within the window for the other.", ["verifier"], perVerifier((s) => s.pending));

  counter("fedmsg_amqp_reconnects_total", "Times an AMQP connection was lost and reopened.", ["connection"], function* (r) {
    for (const c of r.connections) yield [{ connection: c.id }, c.reconnects];
  });
  gauge("fedmsg_actor_state", "1 for the state each actor is in, 0 for its machine's other states.", ["actor", "machine", "state"], function* (r) {
    for (const a of r.actors) {
      yield [{ actor: a.id, machine: a.machine, state: a.state }, 1];
      for (const s of a.states) if (s !== a.state) yield [{ actor: a.id, machine: a.machine, state: s }, 0];
    }
  });

  if (options.processMetrics !== false) {
    try {
      collectDefaultMetrics({ register: registry });
    } catch {
      // A runtime without some of Node's process APIs: the bridge metrics still work.
    }
  }

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
  };
}
