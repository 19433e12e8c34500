// The HTTP endpoint on the simulated transports: /live, /ready, /metrics,
// /actors, and the metrics moving as faults happen (a drop, a reconnect).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SimBroker } from "../actors/sim/index.ts";
import { parseListen, startHttpServer } from "../actors/http.ts";
import { fedmsg, startSimTopology, until, type SimTopology } from "./support/http.ts";
import { startSystem } from "./support/system.ts";
import { simTransports } from "../actors/sim/index.ts";
import { LatencyHistogram } from "../lib/latency.ts";

interface ActorJson {
  id: string;
  machine: string;
  state: string;
  since?: string;
  counters: Record<string, number>;
  detail?: Record<string, unknown>;
  children: ActorJson[];
}

function find(node: ActorJson, id: string): ActorJson | undefined {
  if (node.id === id) return node;
  for (const child of node.children) {
    const found = find(child, id);
    if (found) return found;
  }
  return undefined;
}

async function ready(topology: SimTopology) {
  return until(async () => {
    const r = await topology.get("/ready");
    return r.status === 200 && r.body;
  }, "/ready to answer 200");
}

const REQUIRED = [
  ["fedmsg_bridge_messages_received_total", "counter"],
  ["fedmsg_bridge_messages_forwarded_total", "counter"],
  ["fedmsg_bridge_messages_dropped_total", "counter"],
  ["fedmsg_bridge_duplicates_total", "counter"],
  ["fedmsg_bridge_buffer_messages", "gauge"],
  ["fedmsg_bridge_inflight_confirms", "gauge"],
  ["fedmsg_bridge_reconnects_total", "counter"],
  ["fedmsg_bridge_latency_seconds", "histogram"],
  ["fedmsg_verifier_matched_total", "counter"],
  ["fedmsg_verifier_missing_total", "counter"],
  ["fedmsg_verifier_mismatched_total", "counter"],
  ["fedmsg_verifier_pending", "gauge"],
  ["fedmsg_actor_state", "gauge"],
] as const;

describe("LatencyHistogram", () => {
  it("puts each observation in the first bucket whose bound it does not exceed", () => {
    const h = new LatencyHistogram([0.01, 0.1, 1]);
    for (const v of [0.005, 0.01, 0.05, 1, 2, -3]) h.observe(v);
    assert.deepEqual(h.counts, [3, 1, 1], "0.005, 0.01 and -3 (a clock step back counts as 0) ≤ 0.01; 0.05 ≤ 0.1; 1 ≤ 1; 2 only in +Inf");
    assert.equal(h.count, 6);
    assert.ok(Math.abs(h.sum - 3.065) < 1e-9);
  });
});

describe("HTTP endpoint", () => {
  it("parses host:port and refuses anything else with the fix", () => {
    assert.deepEqual(parseListen("127.0.0.1:9100"), { host: "127.0.0.1", port: 9100 });
    assert.deepEqual(parseListen("[::1]:0"), { host: "::1", port: 0 });
    assert.deepEqual(parseListen("localhost:80"), { host: "localhost", port: 80 });
    assert.throws(() => parseListen("9100"), /http\.listen: "9100" is not host:port; write e\.g\. "127\.0\.0\.1:9100"/);
    assert.throws(() => parseListen("host:70000"), /not host:port/);
  });

  it("says which address is taken when it cannot listen", async () => {
    const run = startSystem({ brokers: { main: { url: "amqp://guest:guest@sim/%2F" } } }, simTransports());
    const first = await startHttpServer({ listen: "127.0.0.1:0", system: run.system, processMetrics: false });
    try {
      const port = new URL(first.url).port;
      await assert.rejects(
        startHttpServer({ listen: `127.0.0.1:${port}`, system: run.system, processMetrics: false }),
        new RegExp(`http\\.listen: cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use; choose another address`),
      );
    } finally {
      await first.close();
      await run.stop();
    }
  });

  it("serves /live, /ready, /actors and /metrics for a running topology", async () => {
    const topology = await startSimTopology();
    try {
      const live = await topology.get("/live");
      assert.equal(live.status, 200);
      assert.deepEqual(JSON.parse(live.body), { status: "OK" });

      const readyBody = JSON.parse(await ready(topology));
      assert.equal(readyBody.status, "ready");
      assert.deepEqual(readyBody.actors.map((a: { actor: string }) => a.actor), ["zmq_to_amqp:in", "amqp_to_zmq:out", "verify:v"]);

      // A message through zmq_to_amqp, confirmed by the broker.
      await topology.upstream.send(fedmsg());
      await until(async () => find(JSON.parse((await topology.get("/actors")).body), "zmq_to_amqp:in")?.counters.forwarded === 1, "the message to be confirmed");

      const actors = await topology.get("/actors");
      assert.equal(actors.status, 200);
      assert.match(actors.type, /^application\/json/);
      const tree = JSON.parse(actors.body) as ActorJson;
      assert.equal(tree.id, "system");
      assert.equal(tree.machine, "system");
      assert.match(tree.state, /^running\./, "the system runs (its publishers may not have started yet)");
      const bridge = find(tree, "zmq_to_amqp:in")!;
      assert.equal(bridge.machine, "zmqToAmqp");
      assert.equal(bridge.state, "forwarding");
      assert.ok(bridge.since && !Number.isNaN(Date.parse(bridge.since)), "since is an ISO timestamp");
      assert.deepEqual(
        { received: bridge.counters.received, forwarded: bridge.counters.forwarded, buffered: bridge.counters.buffered },
        { received: 1, forwarded: 1, buffered: 0 },
      );
      assert.deepEqual(bridge.children.map((c) => `${c.id} ${c.machine} ${c.state}`).sort(), ["amqp:main:1 amqpChannel open.ready", "zmq:in zmqSocket live.connected"]);
      assert.deepEqual(find(tree, "zmq:in")!.detail, { mode: "sub", endpoints: ["tcp://127.0.0.1:9940"] });
      assert.equal(find(tree, "verify:v")!.state, "collecting");

      const metrics = await topology.get("/metrics");
      assert.equal(metrics.status, 200);
      assert.match(metrics.type, /^text\/plain; version=0\.0\.4/);
      for (const [name, type] of REQUIRED) assert.match(metrics.body, new RegExp(`^# TYPE ${name} ${type}$`, "m"), `${name} is a ${type}`);
      const m = (series: string) => topology.metric(metrics.body, series);
      assert.equal(m('fedmsg_bridge_messages_received_total{bridge="zmq_to_amqp:in"}'), 1);
      assert.equal(m('fedmsg_bridge_messages_forwarded_total{bridge="zmq_to_amqp:in"}'), 1);
      assert.equal(m('fedmsg_bridge_buffer_messages{bridge="zmq_to_amqp:in"}'), 0);
      assert.equal(m('fedmsg_bridge_inflight_confirms{bridge="zmq_to_amqp:in"}'), 0);
      assert.equal(m('fedmsg_bridge_reconnects_total{bridge="zmq_to_amqp:in"}'), 0);
      assert.equal(m('fedmsg_bridge_messages_received_total{bridge="amqp_to_zmq:out"}'), 0);
      assert.equal(m('fedmsg_actor_state{actor="zmq_to_amqp:in",machine="zmqToAmqp",state="forwarding"}'), 1);
      assert.equal(m('fedmsg_actor_state{actor="zmq_to_amqp:in",machine="zmqToAmqp",state="backpressured"}'), 0);
      assert.equal(m('fedmsg_actor_state{actor="amqp:main:1",machine="amqpChannel",state="open.ready"}'), 1);
      assert.equal(m('fedmsg_verifier_missing_total{verifier="verify:v",side="amqp"}'), 0);
      assert.equal(m('fedmsg_verifier_missing_total{verifier="verify:v",side="zmq"}'), 0);
      assert.ok(m('fedmsg_verifier_pending{verifier="verify:v"}')! >= 0);

      assert.equal((await topology.get("/nope")).status, 404);
      const post = await fetch(topology.http.url + "/ready", { method: "POST" });
      assert.equal(post.status, 405);
      await post.body?.cancel();
    } finally {
      await topology.stop();
    }
  });

  it("observes each confirmed message in fedmsg_bridge_latency_seconds", async () => {
    const topology = await startSimTopology();
    try {
      await ready(topology);
      for (let i = 0; i < 5; i++) await topology.upstream.send(fedmsg());
      const text = await until(async () => {
        const body = (await topology.get("/metrics")).body;
        return topology.metric(body, 'fedmsg_bridge_messages_forwarded_total{bridge="zmq_to_amqp:in"}') === 5 && body;
      }, "5 messages confirmed");
      assert.equal(topology.metric(text, 'fedmsg_bridge_latency_seconds_count{bridge="zmq_to_amqp:in"}'), 5);
      assert.equal(topology.metric(text, 'fedmsg_bridge_latency_seconds_bucket{bridge="zmq_to_amqp:in",le="+Inf"}'), 5);
      assert.ok(topology.metric(text, 'fedmsg_bridge_latency_seconds_sum{bridge="zmq_to_amqp:in"}')! >= 0);
      assert.equal(topology.metric(text, 'fedmsg_bridge_latency_seconds_count{bridge="amqp_to_zmq:out"}'), 0);

      // amqp_to_zmq: from the delivery to the send on the PUB socket.
      topology.broker.inject("amq.topic", "org.fedoraproject.test.native", JSON.stringify({ native: true }), { messageId: "native-1" });
      await until(async () => {
        const body = (await topology.get("/metrics")).body;
        return topology.metric(body, 'fedmsg_bridge_latency_seconds_count{bridge="amqp_to_zmq:out"}') === 1;
      }, "the AMQP message to be sent on the PUB socket");
    } finally {
      await topology.stop();
    }
  });

  it("counts a drop under its reason", async () => {
    const topology = await startSimTopology();
    try {
      await ready(topology);
      const dropped = async (reason: string) =>
        topology.metric((await topology.get("/metrics")).body, `fedmsg_bridge_messages_dropped_total{bridge="zmq_to_amqp:in",reason="${reason}"}`);
      assert.equal(await dropped("not_json"), undefined, "no series before the first drop");

      await topology.upstream.send(["org.fedoraproject.test.broken", "this is not JSON"]);
      await until(async () => (await dropped("not_json")) === 1, "dropped{reason=not_json} to be 1");
      await topology.upstream.send(["org.fedoraproject.test.broken", "{nope"]);
      await until(async () => (await dropped("not_json")) === 2, "dropped{reason=not_json} to be 2");
      // Loop prevention: the bridge's own output coming back round.
      await topology.upstream.send(fedmsg({ username: "amqp-bridge" }));
      await until(async () => (await dropped("loop")) === 1, "dropped{reason=loop} to be 1");
      assert.equal(await dropped("not_json"), 2);

      const body = (await topology.get("/metrics")).body;
      assert.equal(topology.metric(body, 'fedmsg_bridge_messages_received_total{bridge="zmq_to_amqp:in"}'), 3);
      assert.equal(topology.metric(body, 'fedmsg_bridge_messages_forwarded_total{bridge="zmq_to_amqp:in"}'), 0);
    } finally {
      await topology.stop();
    }
  });

  it("a lost broker flips /ready to 503 naming who is not connected, and counts the reconnect", async () => {
    const topology = await startSimTopology();
    try {
      await ready(topology);
      const before = find(JSON.parse((await topology.get("/actors")).body), "zmq_to_amqp:in")!.since!;

      topology.broker.stop();
      const notReady = await until(async () => {
        const r = await topology.get("/ready");
        return r.status === 503 && JSON.parse(r.body);
      }, "/ready to answer 503");
      assert.equal(notReady.status, "not ready");
      const names = notReady.not_ready.map((a: { actor: string }) => a.actor);
      assert.deepEqual(names, ["zmq_to_amqp:in", "amqp_to_zmq:out", "verify:v"]);
      const bridge = notReady.not_ready.find((a: { actor: string }) => a.actor === "zmq_to_amqp:in");
      assert.equal(bridge.state, "backpressured");
      assert.match(bridge.reason, /^AMQP channel amqp:main:1 is (closed|waiting|reopening|opening), not open$/);

      const during = (await topology.get("/metrics")).body;
      assert.equal(topology.metric(during, 'fedmsg_bridge_reconnects_total{bridge="zmq_to_amqp:in"}'), 1);
      assert.equal(topology.metric(during, 'fedmsg_actor_state{actor="zmq_to_amqp:in",machine="zmqToAmqp",state="backpressured"}'), 1);
      assert.equal(topology.metric(during, 'fedmsg_actor_state{actor="zmq_to_amqp:in",machine="zmqToAmqp",state="forwarding"}'), 0);

      topology.broker.start();
      await ready(topology);
      const after = (await topology.get("/metrics")).body;
      assert.equal(topology.metric(after, 'fedmsg_bridge_reconnects_total{bridge="zmq_to_amqp:in"}'), 1);
      assert.equal(topology.metric(after, 'fedmsg_bridge_reconnects_total{bridge="amqp_to_zmq:out"}'), 1);
      assert.equal(topology.metric(after, 'fedmsg_amqp_reconnects_total{connection="amqp:main"}'), 1);
      const since = find(JSON.parse((await topology.get("/actors")).body), "zmq_to_amqp:in")!.since!;
      assert.ok(Date.parse(since) > Date.parse(before), "since moves with the state");

      // rabbitmqctl close_all_connections: a second reconnect, and ready again.
      topology.broker.closeAllConnections();
      await until(async () => {
        const body = (await topology.get("/metrics")).body;
        return topology.metric(body, 'fedmsg_bridge_reconnects_total{bridge="zmq_to_amqp:in"}') === 2;
      }, "reconnects_total to be 2");
      await ready(topology);
      const forwarded = async () => topology.metric((await topology.get("/metrics")).body, 'fedmsg_bridge_messages_forwarded_total{bridge="zmq_to_amqp:in"}');
      await topology.upstream.send(fedmsg());
      await until(async () => (await forwarded()) === 1, "traffic to flow again after the reconnect");
    } finally {
      await topology.stop();
    }
  });

  it("never shows a broker password: not in /actors, /metrics, /ready, /machines, /events or the page", async () => {
    const password = "Sup3r-S3cret-pw";
    const broker = new SimBroker({ users: { fedmsg: password } });
    const topology = await startSimTopology({ url: `amqp://fedmsg:${password}@sim/%2F`, broker });
    try {
      await ready(topology);
      const actors = await topology.get("/actors");
      assert.match(actors.body, /"url": "amqp:\/\/fedmsg:\*\*\*@sim\/%2F"/, "the broker URL is shown, redacted");
      // A lost connection leaves an error behind, and /ready has reasons to give.
      broker.stop();
      await until(async () => (await topology.get("/ready")).status === 503, "/ready to answer 503");
      const events = await fetch(topology.http.url + "/events");
      const reader = events.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      await reader.cancel();
      const bodies = {
        "/actors": (await topology.get("/actors")).body,
        "/metrics": (await topology.get("/metrics")).body,
        "/ready": (await topology.get("/ready")).body,
        "/machines": (await topology.get("/machines")).body,
        "/": (await topology.get("/")).body,
        "/events": first,
      };
      assert.match(first, /^retry: 2000\n\ndata: \{"time":/);
      for (const [path, body] of Object.entries(bodies)) {
        assert.ok(body.length > 0, `${path} answered`);
        assert.ok(!body.includes(password), `${path} must not contain the password`);
      }
      broker.start();
      await ready(topology);
    } finally {
      await topology.stop();
    }
  });
});
