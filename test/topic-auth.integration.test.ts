// Topic authorization on the local RabbitMQ: setup-broker derives least-privilege
// users from a manifest and applies them with rabbitmqctl; a zmq_to_amqp bridge
// whose user may publish only some topics forwards those, reports each refused one
// (user, exchange, routing key), counts it, keeps or dead-letters it by policy, and
// loses or blocks nothing else. Every user and exchange is this run's own and is
// removed in `finally`.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zmq from "zeromq";
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { amqpTransport } from "../actors/amqp.ts";
import { zmqTransport } from "../actors/zmq.ts";
import { AMQP_URL, collect, eventually, freePort, manifestOf, startSystem, unique } from "./support/system.ts";
import { rabbitmqctl } from "./support/broker.ts";
import { brokerSetupPlan, passwordEnvOf, planScript } from "../lib/broker-permissions.ts";
import { defaultSetupBrokerIo, setupBroker } from "../scripts/setup-broker.ts";
import { describeActor, summaryLines } from "../lib/status.ts";
import { createMetrics } from "../lib/metrics.ts";
import type { BridgeStats } from "../lib/stats.ts";
import type { SystemContext } from "../machines/system.ts";

const real = { amqp: amqpTransport, zmq: zmqTransport };
const broker = new URL(AMQP_URL);
const urlFor = (user: string, password: string) => `amqp://${user}:${password}@${broker.host}/%2F`;

describe("setup-broker: the least-privilege plan of a manifest", () => {
  const manifest = manifestOf({
    brokers: {
      writer: { url: "amqp://zmq-bridge:writer-secret@127.0.0.1:5672/%2F" },
      reader: { url: "amqp://amqp-bridge:reader-secret@127.0.0.1:5672/%2F" },
      verify: { url: "amqp://verifier:verifier-secret@127.0.0.1:5672/%2F" },
      native: { url: "amqp://bodhi:native-secret@127.0.0.1:5672/%2F" },
      admin: { url: "amqp://guest:guest@127.0.0.1:5672/%2F" },
    },
    bridges: [
      { name: "in", kind: "zmq_to_amqp", zmq: { endpoints: ["tcp://127.0.0.1:9940"], topics: ["org.fedoraproject.prod.bodhi.", "org.fedoraproject.prod.koji."] }, amqp: { broker: "writer" } },
      { name: "out", kind: "amqp_to_zmq", amqp: { broker: "reader", binding_keys: ["org.fedoraproject.#"] } },
      { name: "guest-in", kind: "zmq_to_amqp", zmq: { endpoints: ["tcp://127.0.0.1:9941"] }, amqp: { broker: "admin", exchange: "zmq.other" } },
    ],
    verifiers: [{ name: "v", zmq: { endpoints: ["tcp://127.0.0.1:9940"] }, amqp: { broker: "verify" } }],
    publishers: [{ name: "p", kind: "amqp_sample", broker: "native" }],
  });
  const plan = brokerSetupPlan(manifest);
  const user = (name: string) => plan.users.find((u) => u.user === name)!;

  it("zmq_to_amqp may write only zmq.topic, within its subscribed prefixes", () => {
    assert.deepEqual(user("zmq-bridge").permissions, { configure: "^(zmq\\.topic)$", write: "^(zmq\\.topic)$", read: "^$" });
    assert.deepEqual(user("zmq-bridge").topicPermissions, [
      { exchange: "zmq.topic", write: "^(org\\.fedoraproject\\.prod\\.bodhi\\..*|org\\.fedoraproject\\.prod\\.koji\\..*)$", read: "^$" },
    ]);
  });

  it("native publishers may write only amq.topic, with their routing keys", () => {
    assert.deepEqual(user("bodhi").permissions, { configure: "^$", write: "^(amq\\.topic)$", read: "^$" });
    assert.deepEqual(user("bodhi").topicPermissions, [{ exchange: "amq.topic", write: "^(org\\.fedoraproject\\.demo\\.native\\.sample)$", read: "^$" }]);
  });

  it("amqp_to_zmq and the verifier may only read (their own queues aside), and bind only their keys", () => {
    const reader = user("amqp-bridge");
    assert.deepEqual(reader.permissions, { configure: "^(amq\\.gen-.*)$", write: "^(amq\\.gen-.*)$", read: "^(amq\\.gen-.*|amq\\.topic)$" });
    assert.deepEqual(reader.topicPermissions, [{ exchange: "amq.topic", write: "^$", read: "^(org\\.fedoraproject\\.#)$" }]);
    const verifier = user("verifier");
    // The verifier declares zmq.topic (actors/verify-feed.ts), hence configure on it; never write.
    assert.deepEqual(verifier.permissions, {
      configure: "^(amqp_bridge_verify_missing|zmq\\.topic)$",
      write: "^(amqp_bridge_verify_missing)$",
      read: "^(amq\\.topic|amqp_bridge_verify_missing|zmq\\.topic)$",
    });
    for (const t of verifier.topicPermissions) assert.equal(t.write, "^$");
  });

  it("leaves guest alone, with a warning, and prints no password", () => {
    assert.equal(plan.users.some((u) => u.user === "guest"), false);
    assert.ok(plan.warnings.some((w) => w.startsWith("brokers.admin: logs in as guest")));
    const script = planScript(plan, manifest, "m.yaml").join("\n");
    for (const secret of ["writer-secret", "reader-secret", "verifier-secret", "native-secret"]) assert.ok(!script.includes(secret), secret);
    assert.match(script, /printf '%s' "\$FEDMSG_BROKER_PASSWORD_ZMQ_BRIDGE" \| rabbitmqctl add_user zmq-bridge/);
    assert.match(script, /rabbitmqctl set_topic_permissions -p \/ zmq-bridge zmq\.topic '\^\(org/);
    assert.ok(plan.exchanges.some((e) => e.name === "zmq.topic" && e.type === "topic" && e.mode === "bridge"));
    assert.ok(plan.exchanges.some((e) => e.name === "zmq.other"), "exchanges of guest's bridges are still declared");
  });

  it("creates the vhosts the URLs name, when missing", () => {
    const m = manifestOf({ brokers: { b: { url: "amqp://u:x@127.0.0.1:5672/fedmsg-b" } }, bridges: [{ name: "in", kind: "zmq_to_amqp", zmq: { endpoints: ["tcp://127.0.0.1:9940"] }, amqp: { broker: "b" } }] });
    const p = brokerSetupPlan(m);
    assert.deepEqual(p.vhosts, ["fedmsg-b"]);
    const script = planScript(p, m, "m.yaml");
    assert.ok(script.includes("rabbitmqctl list_vhosts name | grep -qxF fedmsg-b || rabbitmqctl add_vhost fedmsg-b"));
    assert.ok(script.includes("rabbitmqctl set_permissions -p fedmsg-b u '^(zmq\\.topic)$' '^(zmq\\.topic)$' '^$'"), script.join("\n"));
  });

  it("warns when one user both publishes and consumes", () => {
    const shared = brokerSetupPlan(
      manifestOf({
        brokers: { main: { url: "amqp://both:x@127.0.0.1:5672/%2F" } },
        bridges: [
          { name: "in", kind: "zmq_to_amqp", zmq: { endpoints: ["tcp://127.0.0.1:9940"] }, amqp: { broker: "main" } },
          { name: "out", kind: "amqp_to_zmq", amqp: { broker: "main" } },
        ],
      }),
    );
    assert.ok(shared.warnings.some((w) => w.includes("user both both publishes and consumes")));
  });
});

// ─── On RabbitMQ ────────────────────────────────────────────────────────────────

let admin: AMQPClient;
let ch: AMQPChannel;
let dir: string;
const users: string[] = [];
const exchanges: string[] = [];

before(async () => {
  admin = new AMQPClient(AMQP_URL);
  await admin.connect();
  ch = await admin.channel();
  dir = mkdtempSync(join(tmpdir(), "fedmsg-topic-auth-"));
});
after(async () => {
  const existing = rabbitmqctl("list_users");
  for (const user of users) if (existing.includes(user)) rabbitmqctl("delete_user", user);
  await admin.close().catch(() => {});
  // A connection of its own: another test's broker restart may have closed `admin`.
  const cleanup = new AMQPClient(AMQP_URL);
  await cleanup.connect();
  for (const exchange of exchanges) {
    const c = await cleanup.channel();
    await c.exchangeDelete(exchange).catch(() => {});
  }
  await cleanup.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A user name of this run, deleted after the tests. */
function newUser(prefix: string) {
  const user = unique(prefix);
  users.push(user);
  return { user, password: randomBytes(12).toString("hex") };
}

/** Runs setup-broker --apply on `raw` (as a manifest file) with the passwords in its environment. */
async function applySetup(raw: Record<string, unknown>, passwords: Record<string, string>, amqpUrl: string | null = AMQP_URL) {
  const file = join(dir, `${randomUUID()}.json`);
  writeFileSync(file, JSON.stringify(raw));
  const out: string[] = [];
  const err: string[] = [];
  const env: Record<string, string> = {};
  for (const [user, password] of Object.entries(passwords)) env[passwordEnvOf(user)] = password;
  const code = await setupBroker({ manifest: file, apply: true, ...(amqpUrl ? { "amqp-url": amqpUrl } : {}) }, { ...defaultSetupBrokerIo(), env, out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}


function envelope(topic: string) {
  return { topic, msg: { topic }, msg_id: `2026-${randomUUID()}`, timestamp: 1764300000, i: 1, username: "tester" };
}

/** A message published as `user`: resolves with the broker's verdict (undefined = accepted). */
async function tryPublish(url: string, exchange: string, routingKey: string): Promise<string | undefined> {
  const client = new AMQPClient(url);
  await client.connect();
  try {
    const c = await client.channel();
    await c.confirmSelect();
    await c.basicPublish(exchange, routingKey, "{}");
    return undefined;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await client.close().catch(() => {});
  }
}

describe("topic authorization on RabbitMQ", () => {
  for (const policy of ["keep", "dead-letter"] as const) {
    it(`a bridge user restricted by topic permissions forwards the allowed topics and reports each refused one (on_refused: ${policy})`, async () => {
      const { user, password } = newUser("fedmsg-zmq-bridge");
      const exchange = unique("test.auth.zmq.topic");
      const dlx = unique("test.auth.refused");
      exchanges.push(exchange, dlx);
      const port = freePort();
      const amqp = { broker: "main", exchange, ...(policy === "dead-letter" ? { on_refused: "dead-letter", dead_letter_exchange: dlx } : {}) };
      const granted = {
        brokers: { main: { url: urlFor(user, password) } },
        bridges: [{ name: "in", kind: "zmq_to_amqp", zmq: { endpoints: [`tcp://127.0.0.1:${port}`], topics: ["org.fedoraproject.allowed."] }, amqp }],
        // Held messages are retried after max_delay_ms: long enough that each is refused once here.
        supervision: { base_delay_ms: 100, max_delay_ms: 60_000 },
      };
      const setup = await applySetup(granted, { [user]: password });
      assert.equal(setup.code, 0, setup.err.join("\n"));
      assert.ok(setup.out.some((l) => l.startsWith(`# declared exchange ${exchange} (topic, durable)`)), setup.out.join("\n"));
      assert.ok(!setup.out.join("\n").includes(password), "the password is not printed");
      const topicGrant = rabbitmqctl("list_user_topic_permissions", user);
      assert.match(topicGrant, new RegExp(`${exchange.replace(/\./g, "\\.")}\\s+\\^\\(org\\\\\\.fedoraproject\\\\\\.allowed\\\\\\.\\.\\*\\)\\$\\s+\\^\\$`));

      const received = await collect(ch, exchange);
      const deadLettered = policy === "dead-letter" ? await collect(ch, dlx) : [];
      const pub = new zmq.Publisher({ sendHighWaterMark: 0 });
      await pub.bind(`tcp://127.0.0.1:${port}`);
      // The bridge subscribes to more than its user may publish: the broker has the last word.
      const run = startSystem({ ...granted, bridges: [{ ...granted.bridges[0], zmq: { endpoints: [`tcp://127.0.0.1:${port}`], topics: [] } }] }, real);
      const bridge = () => run.ref("zmq_to_amqp:in").getSnapshot().context as { stats: BridgeStats; held: unknown[]; buffer: { size: number } };
      try {
        await run.until("zmq_to_amqp:in", "forwarding");
        const probe = "org.fedoraproject.allowed.probe";
        await eventually(() => {
          void pub.send([probe, JSON.stringify(envelope(probe))]);
          return received.length > 0;
        }, "the first probe");

        const allowed = new Set<string>();
        const refusedTopics = ["org.fedoraproject.secret.a", "org.fedoraproject.secret.b", "org.fedoraproject.prod.other.c"];
        const refused = new Set<string>();
        for (let i = 0; i < 300; i++) {
          const topic = i % 20 === 7 ? refusedTopics[(i / 20) % refusedTopics.length | 0]! : `org.fedoraproject.allowed.t${i % 5}`;
          const e = envelope(topic);
          (topic.includes(".allowed.") ? allowed : refused).add(e.msg_id);
          await pub.send([topic, JSON.stringify(e)]);
        }
        const arrived = () => new Set(received.map((m) => m.properties.messageId));
        await eventually(() => [...allowed].every((id) => arrived().has(id)), `all ${allowed.size} allowed messages`, 30_000);
        await eventually(() => bridge().stats.refused >= refused.size, `${refused.size} refusals counted`, 30_000);

        // Nothing refused reached the exchange; each refused topic is reported once, naming user, exchange and routing key.
        assert.equal([...refused].filter((id) => arrived().has(id)).length, 0);
        assert.equal(bridge().stats.refused, refused.size, "each refused message counted once");
        for (const topic of refusedTopics) {
          const lines = run.logger.lines.filter((l) => l.includes(`routing key ${topic} `));
          assert.equal(lines.length, 1, `one report for ${topic}:\n${run.logger.lines.join("\n")}`);
          assert.match(lines[0]!, new RegExp(`ERROR \\[zmq_to_amqp:in\\] broker refused to let user ${user} publish to exchange ${exchange.replace(/\./g, "\\.")} with routing key ${topic.replace(/\./g, "\\.")} \\(403 ACCESS_REFUSED\\)`));
        }
        if (policy === "keep") {
          assert.equal(bridge().held.length, refused.size, "refused messages are held for a retry, not dropped");
        } else {
          await eventually(() => deadLettered.length >= refused.size, "the refused messages in the dead-letter exchange");
          assert.deepEqual(new Set(deadLettered.map((m) => m.properties.messageId)), refused);
          assert.equal(deadLettered[0]!.properties.headers!["x-refused-user"], user);
          assert.equal(deadLettered[0]!.properties.headers!["x-refused-exchange"], exchange);
        }
        // Counted where operators look: the summary line, the status counters and /metrics.
        assert.ok(summaryLines((run.system.getSnapshot().context as SystemContext).refs).some((l) => l.includes(`refused=${refused.size}`)));
        const counters = describeActor("system", run.system).children.find((c) => c.id === "zmq_to_amqp:in")?.counters;
        assert.equal(counters?.refused, refused.size, "status counters");
        const metrics = await createMetrics(run.system, { processMetrics: false }).render();
        assert.match(metrics, new RegExp(`^fedmsg_bridge_refused_total\\{bridge="zmq_to_amqp:in"\\} ${refused.size}$`, "m"));

        // Not blocked: later allowed messages still cross, and the bridge is back to forwarding with an empty buffer.
        const later = envelope("org.fedoraproject.allowed.later");
        await pub.send([later.topic, JSON.stringify(later)]);
        await eventually(() => arrived().has(later.msg_id), "a message sent after the refusals");
        await run.until("zmq_to_amqp:in", "forwarding");
        await eventually(() => bridge().buffer.size === 0, "an empty buffer");
      } finally {
        await run.stop();
        pub.close();
      }
    });
  }

  it("the users setup-broker derives can do their job and nothing more", async () => {
    const writer = newUser("fedmsg-w");
    const reader = newUser("fedmsg-r");
    const verifier = newUser("fedmsg-v");
    const zmqExchange = unique("test.auth.zmq");
    const nativeExchange = unique("test.auth.native");
    exchanges.push(zmqExchange, nativeExchange);
    const inPort = freePort();
    const outPort = freePort();
    const raw = {
      brokers: {
        w: { url: urlFor(writer.user, writer.password) },
        r: { url: urlFor(reader.user, reader.password) },
        v: { url: urlFor(verifier.user, verifier.password) },
      },
      bridges: [
        { name: "in", kind: "zmq_to_amqp", zmq: { endpoints: [`tcp://127.0.0.1:${inPort}`], topics: ["org.fedoraproject."] }, amqp: { broker: "w", exchange: zmqExchange } },
        { name: "out", kind: "amqp_to_zmq", zmq: { publish_endpoint: `tcp://127.0.0.1:${outPort}` }, amqp: { broker: "r", exchange: nativeExchange } },
      ],
      verifiers: [{ name: "v", zmq: { endpoints: [`tcp://127.0.0.1:${inPort}`] }, amqp: { broker: "v", exchanges: [zmqExchange, nativeExchange], queue: unique("test.auth.verify") } }],
    };
    const setup = await applySetup(raw, { [writer.user]: writer.password, [reader.user]: reader.password, [verifier.user]: verifier.password });
    assert.equal(setup.code, 0, setup.err.join("\n"));

    const run = startSystem(raw, real);
    try {
      await run.until("zmq_to_amqp:in", "forwarding");
      await run.until("amqp_to_zmq:out", "forwarding");
      await run.until("verify:v", "collecting");
    } finally {
      await run.stop();
    }
    // Writer: zmq.topic within its prefix only; never the native exchange.
    assert.equal(await tryPublish(urlFor(writer.user, writer.password), zmqExchange, "org.fedoraproject.x"), undefined);
    assert.match((await tryPublish(urlFor(writer.user, writer.password), zmqExchange, "com.example.x")) ?? "", /ACCESS_REFUSED - (write )?access to topic 'com\.example\.x'/);
    assert.match((await tryPublish(urlFor(writer.user, writer.password), nativeExchange, "org.fedoraproject.x")) ?? "", /ACCESS_REFUSED - access to exchange/);
    // Readers: no exchange at all.
    for (const u of [reader, verifier]) {
      for (const exchange of [zmqExchange, nativeExchange]) {
        assert.match((await tryPublish(urlFor(u.user, u.password), exchange, "org.fedoraproject.x")) ?? "", /ACCESS_REFUSED/, `${u.user} → ${exchange}`);
      }
    }
  });

  it("--apply creates a missing vhost, and the new user declares its exchange there itself", async () => {
    const { user, password } = newUser("fedmsg-vh");
    const vhost = unique("fedmsg-test-vhost");
    try {
      const raw = {
        brokers: { main: { url: `amqp://${user}:${password}@${broker.host}/${vhost}` } },
        bridges: [{ name: "in", kind: "zmq_to_amqp", zmq: { endpoints: ["tcp://127.0.0.1:9"] }, amqp: { broker: "main" } }],
      };
      // No --amqp-url: the exchanges are declared as the manifest's (new) user.
      const setup = await applySetup(raw, { [user]: password }, null);
      assert.equal(setup.code, 0, setup.err.join("\n"));
      assert.ok(setup.out.includes(`+ rabbitmqctl add_vhost ${vhost}`), setup.out.join("\n"));
      assert.match(rabbitmqctl("list_permissions", "-p", vhost), new RegExp(`${user}\\s+\\^\\(zmq\\\\\\.topic\\)\\$`));
      assert.match(rabbitmqctl("list_exchanges", "-p", vhost, "name", "type", "durable"), /zmq\.topic\s+topic\s+true/);
    } finally {
      if (rabbitmqctl("list_vhosts").includes(vhost)) rabbitmqctl("delete_vhost", vhost);
    }
  });

  it("--apply refuses, changing nothing, when a new user's password is not in the environment", async () => {
    const { user } = newUser("fedmsg-nopw");
    const file = join(dir, "nopw.json");
    writeFileSync(file, JSON.stringify({ brokers: { main: { url: urlFor(user, "from-the-url") } } }));
    const err: string[] = [];
    const code = await setupBroker({ manifest: file, apply: true }, { ...defaultSetupBrokerIo(), env: {}, out: () => {}, err: (l) => err.push(l) });
    // No bridge uses the broker: nothing to grant, nothing to refuse.
    assert.equal(code, 0, err.join("\n"));
    writeFileSync(file, JSON.stringify({ brokers: { main: { url: urlFor(user, "from-the-url") } }, bridges: [{ name: "in", kind: "zmq_to_amqp", zmq: { endpoints: ["tcp://127.0.0.1:9"] }, amqp: { broker: "main" } }] }));
    const code2 = await setupBroker({ manifest: file, apply: true }, { ...defaultSetupBrokerIo(), env: {}, out: () => {}, err: (l) => err.push(l) });
    assert.equal(code2, 1);
    assert.equal(err.length, 1);
    assert.equal(err[0], `setup-broker --apply: user ${user} does not exist and ${passwordEnvOf(user)} is not set; export ${passwordEnvOf(user)} with the password of its broker URL and run again (nothing was changed)`);
    assert.ok(!rabbitmqctl("list_users").includes(user), "no user was created");
  });
});
