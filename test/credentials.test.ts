// Credentials (the broker password, TLS private keys) never leave: not in logs
// (human or JSON), the terminal status and summary lines, /actors, /metrics,
// /ready, /events and the other HTTP endpoints, actor descriptions, the
// inspection events streamed to a Stately inspector (--inspect), error
// messages and exit lines, setup-broker's output, manifest errors, nor the
// output of a real `run` process. Each scenario drives the errors that tend to
// carry them: a refused login, an unreachable broker, TLS refusals with a client
// key configured, a key that does not match its certificate, giving up.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AnyActorRef } from "xstate";
import { WebSocketServer } from "ws";
import { amqpTransport } from "../actors/amqp.ts";
import { zmqTransport } from "../actors/zmq.ts";
import { SimBroker, simTransports } from "../actors/sim/index.ts";
import { runManifest } from "../actors/runtime.ts";
import type { Transports } from "../actors/transport.ts";
import { createLogger, type LogFormat } from "../lib/log.ts";
import { describeActor } from "../lib/status.ts";
import { walkActors } from "../lib/actor-watch.ts";
import { parseManifest } from "../schema/manifest.ts";
import { defaultSetupBrokerIo, setupBroker } from "../scripts/setup-broker.ts";
import { AMQP_URL, cliCommand, eventually, freePort, manifestOf, spawnCaptured } from "./support/system.ts";
import { makeTestPki, startTlsProxy, type TestPki, type TlsProxy } from "./support/tls-proxy.ts";

/** Distinctive enough that any occurrence is a leak. */
const PASSWORD = `Pw-${randomBytes(9).toString("hex")}`;
const real: Transports = { amqp: amqpTransport, zmq: zmqTransport };
const broker = new URL(AMQP_URL);

let pki: TestPki;
let proxy: TlsProxy;
let dir: string;
/** What must never appear: the password, and pieces of every private key in play. */
let secrets: { name: string; text: string }[];

/** Pieces of a PEM private key as they could leak: base64 lines, the joined body, its bytes as JSON would list them. */
function keyCanaries(name: string, file: string) {
  const pem = readFileSync(file, "utf8");
  const body = pem.split("\n").filter((l) => l && !l.startsWith("-----"));
  const joined = body.join("");
  const der = Buffer.from(joined, "base64");
  return [
    ...body.slice(1, -1).map((line, i) => ({ name: `${name} line ${i + 2}`, text: line })),
    { name: `${name} body`, text: joined.slice(200, 260) },
    { name: `${name} PEM bytes`, text: [...Buffer.from(body[1]!).subarray(0, 24)].join(",") },
    { name: `${name} DER bytes`, text: [...der.subarray(64, 88)].join(",") },
    { name: `${name} DER hex`, text: der.subarray(64, 88).toString("hex") },
  ];
}

before(async () => {
  pki = makeTestPki();
  proxy = await startTlsProxy(pki);
  dir = mkdtempSync(join(tmpdir(), "fedmsg-credentials-"));
  secrets = [
    { name: "password", text: PASSWORD },
    { name: "a PEM private key header", text: "PRIVATE KEY" },
    ...keyCanaries("client key", pki.clientKey),
    ...keyCanaries("server key", pki.serverKey),
  ];
});
after(async () => {
  await proxy?.close();
  pki?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Fails naming every place and secret found; `where` → the texts seen there. */
function assertNoSecrets(seen: Record<string, string[]>) {
  const leaks: string[] = [];
  for (const [where, texts] of Object.entries(seen)) {
    for (const text of texts) {
      for (const s of secrets) {
        const at = text.indexOf(s.text);
        if (at >= 0) leaks.push(`${where}: ${s.name} in …${text.slice(Math.max(0, at - 60), at + 20)}…`);
      }
    }
  }
  assert.deepEqual(leaks, [], "credentials leaked");
}

/**
 * Everything reachable from an actor's context, as text: strings, numbers, bytes
 * (as text and as the number list JSON.stringify makes of a Buffer), maps, sets.
 * ES private fields are out of reach, as they are for any serializer.
 */
function contextText(value: unknown, seen = new WeakSet<object>(), depth = 0, out: string[] = []): string[] {
  if (depth > 12 || value === null || value === undefined) return out;
  if (typeof value === "string") out.push(value);
  else if (typeof value === "number" || typeof value === "boolean") out.push(String(value));
  else if (typeof value === "object") {
    if (seen.has(value)) return out;
    seen.add(value);
    if (value instanceof Uint8Array) {
      const bytes = value.subarray(0, 8192);
      out.push(Buffer.from(bytes).toString("latin1"), [...bytes].join(","), Buffer.from(bytes).toString("hex"));
    } else if (value instanceof Map) {
      for (const [k, v] of value) contextText([k, v], seen, depth + 1, out);
    } else if (value instanceof Set || Array.isArray(value)) {
      for (const v of value) contextText(v, seen, depth + 1, out);
    } else if (typeof (value as { getSnapshot?: unknown }).getSnapshot === "function") {
      // An actor reference: its own context is visited through walkActors.
    } else {
      for (const v of Object.values(value)) contextText(v, seen, depth + 1, out);
    }
  }
  return out;
}

interface Observed {
  /** Where → what was seen there. */
  seen: Record<string, string[]>;
  code: number;
  logs: string[];
  /** The text of every actor's context (not an output: see the TLS key test). */
  contexts: string[];
}

/**
 * Runs `raw` with runManifest as the CLI does (status lines, summary, HTTP on a free
 * port), waits for `ready` to hold on the log lines, reads every HTTP endpoint and
 * every actor, then stops the system and returns all of it, by where it was seen.
 */
async function observe(raw: Record<string, unknown>, transports: Transports, ready: (logs: string[]) => boolean, format: LogFormat = "human"): Promise<Observed> {
  const logs: string[] = [];
  const logger = createLogger({ format, write: (l) => logs.push(l), minLevel: "debug" });
  const out: string[] = [];
  const stream = { isTTY: false, write: (chunk: string) => (out.push(chunk), true) } as unknown as NodeJS.WriteStream;
  let system: AnyActorRef | undefined;
  // A Stately-style inspector (--inspect) receives every actor, snapshot and event.
  const inspector = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((resolve) => inspector.once("listening", resolve));
  const inspected: string[] = [];
  inspector.on("connection", (socket) => socket.on("message", (data) => inspected.push(data.toString())));
  const manifest = manifestOf({ ...raw, http: { listen: "127.0.0.1:0" }, shutdown: { drain_timeout_ms: 500 } });
  const done = runManifest(manifest, {
    transports,
    logger,
    out: stream,
    statusIntervalMs: 40,
    signals: false,
    inspect: `ws://127.0.0.1:${(inspector.address() as { port: number }).port}`,
    onStarted: (s) => (system = s),
  });
  const http: string[] = [];
  const described: string[] = [];
  const contexts: string[] = [];
  try {
    await eventually(() => ready(logs) && out.some((c) => c.startsWith("status ")), "the scenario's log line and a status line");
    const base = /(http:\/\/127\.0\.0\.1:\d+)/.exec(logs.find((l) => l.includes("serving /live")) ?? "")?.[1];
    assert.ok(base, "the HTTP endpoint is announced");
    for (const path of ["/actors", "/metrics", "/ready", "/live", "/machines", "/"]) http.push(await (await fetch(base + path)).text());
    const controller = new AbortController();
    const events = await fetch(base + "/events", { signal: controller.signal });
    const reader = events.body!.getReader();
    const first = await reader.read();
    http.push(new TextDecoder().decode(first.value));
    controller.abort();
    await reader.cancel().catch(() => {});
    described.push(JSON.stringify(describeActor("system", system!)));
    for (const node of walkActors(system!)) contexts.push(...contextText((node.ref.getSnapshot() as { context?: unknown }).context));
  } finally {
    system?.send({ type: "STOP" });
  }
  const code = await done;
  inspector.close();
  assert.ok(inspected.length > 0, "the inspector received events");
  return { seen: { logs, "status and summary lines": out, http, describeActor: described, inspector: inspected }, code, logs, contexts };
}

/** A topology on `url`: both bridges and a verifier, on ports of this run. */
function topology(url: string, tls?: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const upstream = `tcp://127.0.0.1:${freePort()}`;
  return {
    brokers: { main: { url, ...(tls ? { tls } : {}), ...extra } },
    bridges: [
      { name: "in", kind: "zmq_to_amqp", zmq: { endpoints: [upstream] }, amqp: { broker: "main" } },
      { name: "out", kind: "amqp_to_zmq", zmq: { publish_endpoint: `tcp://127.0.0.1:${freePort()}` }, amqp: { broker: "main" } },
    ],
    verifiers: [{ name: "v", zmq: { endpoints: [upstream] }, amqp: { broker: "main" } }],
  };
}

const has = (pattern: RegExp) => (logs: string[]) => logs.some((l) => pattern.test(l));

describe("credentials never leave", () => {
  it("a healthy run on the simulated broker, through a forced reconnect", async () => {
    const sim = simTransports(new SimBroker({ users: { fedmsg: PASSWORD } }));
    let reconnected = false;
    const seen = await observe(topology(`amqp://fedmsg:${PASSWORD}@sim/%2F`), sim, (logs) => {
      if (!reconnected && logs.some((l) => l.includes("connected to amqp://fedmsg:***@sim/%2F"))) {
        reconnected = true;
        sim.broker.closeAllConnections();
      }
      return reconnected && logs.filter((l) => l.includes("connected to")).length >= 2;
    });
    assert.ok(seen.logs.some((l) => l.includes("connection lost")), "the reconnect happened");
    assertNoSecrets(seen.seen);
    assert.equal(seen.code, 0);
  });

  it("a login the simulated broker refuses", async () => {
    const sim = simTransports(new SimBroker({ users: { fedmsg: "another password" } }));
    const seen = await observe(topology(`amqp://fedmsg:${PASSWORD}@sim/%2F`), sim, has(/cannot (reach|connect) the broker at amqp:\/\/fedmsg:\*\*\*@sim/), "json");
    assertNoSecrets(seen.seen);
  });

  it("a wrong password on RabbitMQ (JSON logs)", async () => {
    const seen = await observe(topology(`amqp://guest:${PASSWORD}@${broker.host}/%2F`), real, has(/refused the login of user guest/), "json");
    assert.ok(seen.logs.some((l) => l.includes("guest:***@")), "the URL is shown, masked");
    assertNoSecrets(seen.seen);
  });

  it("an unreachable broker", async () => {
    const seen = await observe(topology(`amqp://guest:${PASSWORD}@127.0.0.1:1/%2F`), real, has(/cannot reach the broker at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1/));
    assertNoSecrets(seen.seen);
  });

  it("TLS with a client key: the handshake succeeds, the login is refused", async () => {
    const handshakes = proxy.handshakes;
    const tls = { ca_cert: pki.caCert, certfile: pki.clientCert, keyfile: pki.clientKey };
    const seen = await observe(topology(`amqps://guest:${PASSWORD}@localhost:${proxy.port}/%2F`, tls), real, has(/refused the login of user guest/));
    assert.ok(proxy.handshakes > handshakes, "the key was used for a handshake");
    assertNoSecrets(seen.seen);
    // Key material is read at each connect and held only inside the client, behind ES
    // private fields: no actor's context reaches it. (The connection actor's context
    // does keep its URL, password included, to reconnect; that is not an output.)
    const keyPieces = secrets.filter((s) => s.name !== "password");
    assert.deepEqual(
      seen.contexts.flatMap((t) => keyPieces.filter((s) => t.includes(s.text)).map((s) => s.name)),
      [],
      "no key material in any actor's context",
    );
  });

  it("TLS refused (wrong CA) with a client key configured", async () => {
    const tls = { ca_cert: pki.wrongCaCert, certfile: pki.clientCert, keyfile: pki.clientKey };
    const seen = await observe(topology(`amqps://guest:${PASSWORD}@localhost:${proxy.port}/%2F`, tls), real, has(/TLS: the certificate of localhost/));
    assertNoSecrets(seen.seen);
  });

  it("a key file that does not match its certificate", async () => {
    const tls = { ca_cert: pki.caCert, certfile: pki.clientCert, keyfile: pki.serverKey };
    const seen = await observe(topology(`amqps://guest:${PASSWORD}@localhost:${proxy.port}/%2F`, tls), real, has(/tls\.keyfile .* is not the private key of tls\.certfile/));
    assertNoSecrets(seen.seen);
  });

  it("giving up after max_attempts: the log, the summary and the fatal line", async () => {
    const logs: string[] = [];
    const out: string[] = [];
    const stream = { isTTY: false, write: (chunk: string) => (out.push(chunk), true) } as unknown as NodeJS.WriteStream;
    const manifest = manifestOf(topology(`amqp://guest:${PASSWORD}@${broker.host}/%2F`, undefined, { max_attempts: 2 }));
    const code = await runManifest(manifest, { transports: real, logger: createLogger({ write: (l) => logs.push(l) }), out: stream, statusIntervalMs: 40, signals: false });
    assert.equal(code, 1);
    assert.ok(out.some((c) => c.startsWith("fatal: ")), "a fatal line");
    assert.ok(logs.some((l) => l.includes("giving up on amqp://guest:***@")));
    assertNoSecrets({ logs, "status, summary and fatal lines": out });
  });

  it("the errors the transport throws", async () => {
    const errors: string[] = [];
    const attempts: [string, Parameters<typeof amqpTransport.connect>[1]][] = [
      [`amqp://guest:${PASSWORD}@${broker.host}/%2F`, {}],
      [`amqp://guest:${PASSWORD}@127.0.0.1:1/%2F`, {}],
      [`amqps://guest:${PASSWORD}@127.0.0.1:${proxy.port}/%2F`, { tls: { caCert: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey } }],
      [`amqps://guest:${PASSWORD}@localhost:${proxy.port}/%2F`, { tls: { caCert: pki.wrongCaCert, certFile: pki.clientCert, keyFile: pki.clientKey } }],
      [`amqps://guest:${PASSWORD}@localhost:${proxy.port}/%2F`, { tls: { caCert: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientCert } }],
      [`amqps://guest:${PASSWORD}@localhost:${proxy.port}/%2F`, { tls: { caCert: pki.clientKey } }],
      [`amqps://localhost:${proxy.port}/%2F`, { tls: { caCert: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey } }],
    ];
    for (const [url, options] of attempts) {
      const error = await amqpTransport.connect(url, options).then(
        async (c) => (await c.close(), undefined),
        (e: unknown) => e as Error,
      );
      assert.ok(error, `${url.replace(PASSWORD, "***")} must fail`);
      errors.push(error.message, String(error.stack ?? ""), error.name, ...contextText(error));
      assert.doesNotThrow(() => JSON.stringify(error), "a plain error, which serializes");
    }
    assertNoSecrets({ "thrown errors": errors });
  });

  it("setup-broker's printout and its errors", async () => {
    const file = join(dir, "setup.json");
    writeFileSync(
      file,
      JSON.stringify({
        brokers: { main: { url: `amqp://fedmsg-nobody:${PASSWORD}@${broker.host}/%2F` } },
        bridges: [{ name: "in", kind: "zmq_to_amqp", zmq: { endpoints: ["tcp://127.0.0.1:9"] }, amqp: { broker: "main" } }],
      }),
    );
    const out: string[] = [];
    const err: string[] = [];
    const io = { ...defaultSetupBrokerIo(), env: { FEDMSG_BROKER_PASSWORD_FEDMSG_NOBODY: PASSWORD }, out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
    // Not applied: the user does not exist, so declaring the exchanges as that user fails.
    const code = await setupBroker({ manifest: file, apply: false }, io);
    assert.equal(code, 1);
    assert.ok(err.some((l) => l.includes("refused the login of user fedmsg-nobody")), err.join("\n"));
    assert.ok(out.some((l) => l.includes('"$FEDMSG_BROKER_PASSWORD_FEDMSG_NOBODY"')));
    assertNoSecrets({ "setup-broker stdout": out, "setup-broker stderr": err });
  });

  /** Every error parseManifest reports for these manifests. */
  const manifestErrors = (manifests: unknown[]) =>
    manifests.flatMap((raw) => {
      const result = parseManifest(typeof raw === "string" ? raw : JSON.stringify(raw), { file: "m.yaml", env: {} });
      assert.equal(result.ok, false);
      return result.ok ? [] : result.errors;
    });

  it("manifest errors about a broker with a password", () => {
    const url = `amqp://guest:${PASSWORD}@127.0.0.1:5672/%2F`;
    const errors = manifestErrors([
      { brokers: { main: { url, tsl: {} } } },
      { brokers: { main: { url, heartbeat: -1 } }, bridges: [{ name: "x", kind: "zmq_to_amqp", zmq: { endpoints: ["tcp://*:1"] }, amqp: { broker: "other" } }] },
      { brokers: { main: { url, tls: { certfile: "/c.pem" } } } },
      { brokers: { main: { url: `amqq://guest:${PASSWORD}@127.0.0.1:5672/%2F` } } },
      `brokers:\n  main:\n    url: "${url}"\n    url: "${url}"\n`,
    ]);
    assertNoSecrets({ "manifest errors": errors });
  });

  it("manifest errors about a URL too malformed to parse, password and all", () => {
    const errors = manifestErrors([
      { brokers: { main: { url: `amqp//guest:${PASSWORD}@127.0.0.1:5672/%2F` } } },
      { brokers: { main: { url: `guest:${PASSWORD}@127.0.0.1:5672` } } },
    ]);
    assertNoSecrets({ "manifest errors": errors });
  });

  it("a real `run` process: stdout and stderr", async () => {
    const file = join(dir, "run.json");
    writeFileSync(file, JSON.stringify({ ...topology(`amqp://guest:${PASSWORD}@${broker.host}/%2F`), shutdown: { drain_timeout_ms: 200 } }));
    const [command, args] = cliCommand(["run", "--manifest", file]);
    const { child, out, err, exited } = spawnCaptured(command, args);
    try {
      await eventually(() => /refused the login of user guest/.test(err()), "the refusal on stderr", 30_000);
    } finally {
      child.kill("SIGTERM");
    }
    await exited;
    assert.match(err(), /amqp:\/\/guest:\*\*\*@/);
    assertNoSecrets({ "run stdout": [out()], "run stderr": [err()] });
  });
});
