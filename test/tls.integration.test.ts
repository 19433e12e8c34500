// TLS to the broker: a node:tls endpoint made by the test (test CA, server
// certificate for localhost only) in front of the local RabbitMQ. The right CA
// connects and carries messages; a wrong CA, a host name the certificate does not
// name and a certificate for another name are refused with a one-line reason.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { AMQPClient, type AMQPChannel } from "@cloudamqp/amqp-client";
import { amqpTransport } from "../actors/amqp.ts";
import { zmqTransport } from "../actors/zmq.ts";
import { AMQP_URL, collect, eventually, freePort, startSystem, unique } from "./support/system.ts";
import { makeTestPki, startTlsProxy, type TestPki, type TlsProxy } from "./support/tls-proxy.ts";

const real = { amqp: amqpTransport, zmq: zmqTransport };

let pki: TestPki;
let proxy: TlsProxy;
let otherProxy: TlsProxy;

before(async () => {
  pki = makeTestPki();
  proxy = await startTlsProxy(pki);
  otherProxy = await startTlsProxy(pki, { certificate: "other" });
});
after(async () => {
  await proxy?.close();
  await otherProxy?.close();
  pki?.remove();
});

/** A system with one broker and nothing else: only the connection actor runs. */
function connectOnly(url: string, tls: Record<string, unknown>) {
  return startSystem({ brokers: { main: { url, tls } } }, real);
}

/** The log lines of the connection actor at `level`. */
const linesOf = (run: ReturnType<typeof startSystem>, level: string) => run.logger.lines.filter((l) => l.includes(` ${level} [amqp:main]`));

/** The refusal is one line, names TLS, carries the runtime's code, and has no stack. */
function assertOneLineRefusal(line: string | undefined, ...expected: RegExp[]) {
  assert.ok(line, "a refusal was logged");
  assert.doesNotMatch(line, /\n/, "one line");
  assert.doesNotMatch(line, /\n\s+at |node:internal|\.ts:\d+/, "no stack");
  assert.match(line, /cannot connect to the broker at amqps:\/\/guest:\*\*\*@/);
  assert.doesNotMatch(line, /is RabbitMQ running/, "a TLS refusal is not an unreachable broker");
  for (const pattern of expected) assert.match(line, pattern);
}

describe("TLS to the broker", () => {
  it("connects with the right CA and a client certificate, and carries messages", async () => {
    const exchange = unique("test.tls.zmq.topic");
    const client = new AMQPClient(AMQP_URL);
    await client.connect();
    const ch: AMQPChannel = await client.channel();
    await ch.exchangeDeclare(exchange, "topic", { durable: true });
    const received = await collect(ch, exchange);

    const namesBefore = proxy.clientNames.length;
    const run = startSystem(
      {
        brokers: {
          main: {
            url: `amqps://guest:guest@localhost:${proxy.port}/%2F`,
            tls: { ca_cert: pki.caCert, certfile: pki.clientCert, keyfile: pki.clientKey },
          },
        },
        // The bridge's channel is set up over TLS (declare, confirm mode); the sample
        // publisher moves messages through the same TLS connection. (No ZeroMQ traffic:
        // zeromq.js under Deno can crash when a socket is closed while messages arrive.)
        bridges: [{ name: "in", kind: "zmq_to_amqp", zmq: { endpoints: [`tcp://127.0.0.1:${freePort()}`] }, amqp: { broker: "main", exchange } }],
        publishers: [{ name: "native", kind: "amqp_sample", broker: "main", exchange, rate: 50 }],
      },
      real,
    );
    try {
      await run.until("amqp:main", "connected");
      await run.until("zmq_to_amqp:in", "forwarding");
      assert.ok(proxy.clientNames.slice(namesBefore).includes("fedmsg-test-client"), "the client certificate was presented");
      await eventually(() => received.length >= 5, "messages published over TLS");
      assert.equal(received[0]!.routingKey, "org.fedoraproject.demo.native.sample");
      assert.ok(linesOf(run, "INFO").some((l) => l.includes(`connected to amqps://guest:***@localhost:${proxy.port}/%2F`)));
      assert.equal(linesOf(run, "WARNING").filter((l) => /verification is OFF/.test(l)).length, 0, "no insecure warning");
    } finally {
      await run.stop();
      await ch.exchangeDelete(exchange).catch(() => {});
      await client.close();
    }
  });

  it("refuses a broker whose certificate the configured CA did not sign", async () => {
    const run = connectOnly(`amqps://guest:guest@localhost:${proxy.port}/%2F`, { ca_cert: pki.wrongCaCert });
    try {
      await eventually(() => linesOf(run, "ERROR").length > 0, "the refusal");
      await run.until("amqp:main", "reconnecting");
      const [line] = linesOf(run, "ERROR");
      assertOneLineRefusal(line, /TLS: the certificate of localhost:\d+ is not signed by a CA in tls\.ca_cert/, /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/, /set tls\.ca_cert/);
      assert.ok(line.includes(pki.wrongCaCert), "names the CA file");
    } finally {
      await run.stop();
    }
  });

  it("refuses a host name the certificate does not name (an IP address for a localhost certificate)", async () => {
    const run = connectOnly(`amqps://guest:guest@127.0.0.1:${proxy.port}/%2F`, { ca_cert: pki.caCert });
    try {
      await eventually(() => linesOf(run, "ERROR").length > 0, "the refusal");
      assertOneLineRefusal(linesOf(run, "ERROR")[0], /TLS: the certificate of 127\.0\.0\.1:\d+ is not valid for host 127\.0\.0\.1/, /ERR_TLS_CERT_ALTNAME_INVALID/);
    } finally {
      await run.stop();
    }
  });

  it("refuses a certificate made out to another host name", async () => {
    const run = connectOnly(`amqps://guest:guest@localhost:${otherProxy.port}/%2F`, { ca_cert: pki.caCert });
    try {
      await eventually(() => linesOf(run, "ERROR").length > 0, "the refusal");
      assertOneLineRefusal(linesOf(run, "ERROR")[0], /is not valid for host localhost/, /ERR_TLS_CERT_ALTNAME_INVALID/);
    } finally {
      await run.stop();
    }
  });

  it("tells a plain AMQP port from a TLS one", async () => {
    const plain = new URL(AMQP_URL);
    const run = connectOnly(`amqps://guest:guest@${plain.host}/%2F`, { ca_cert: pki.caCert });
    try {
      await eventually(() => linesOf(run, "ERROR").length > 0, "the refusal");
      assertOneLineRefusal(linesOf(run, "ERROR")[0], /did not answer with TLS/, /usually 5671/);
    } finally {
      await run.stop();
    }
  });

  it("connects without verification only with tls.insecure, and warns at start", async () => {
    const run = connectOnly(`amqps://guest:guest@127.0.0.1:${proxy.port}/%2F`, { ca_cert: pki.wrongCaCert, insecure: true });
    try {
      await run.until("amqp:main", "connected");
      const warnings = linesOf(run, "WARNING").filter((l) => /TLS certificate verification is OFF/.test(l));
      assert.equal(warnings.length, 1, "one warning");
      assert.match(warnings[0], /for tests only/);
      assert.doesNotMatch(warnings[0], /guest:guest/);
      // The warning comes before anything else the connection says.
      assert.ok(run.logger.lines.findIndex((l) => l.includes("[amqp:main]")) === run.logger.lines.indexOf(warnings[0]));
    } finally {
      await run.stop();
    }
  });

  it("refuses EXTERNAL authentication (no credentials in the URL, a client certificate) with a one-line reason", async () => {
    const handshakes = proxy.handshakes;
    const run = connectOnly(`amqps://localhost:${proxy.port}/%2F`, { ca_cert: pki.caCert, certfile: pki.clientCert, keyfile: pki.clientKey });
    try {
      await eventually(() => linesOf(run, "ERROR").length > 0, "the refusal");
      const [line] = linesOf(run, "ERROR");
      assert.doesNotMatch(line, /\n/);
      assert.match(line, /no user name and tls\.certfile is set, which asks for EXTERNAL/);
      assert.match(line, /@cloudamqp\/amqp-client only supports PLAIN; put the user name and password in the URL/);
      assert.equal(proxy.handshakes, handshakes, "no connection was attempted, so no silent guest login");
    } finally {
      await run.stop();
    }
  });

  it("names a key file that does not belong to the certificate, without its content", async () => {
    const run = connectOnly(`amqps://guest:guest@localhost:${proxy.port}/%2F`, { ca_cert: pki.caCert, certfile: pki.clientCert, keyfile: pki.serverKey });
    try {
      await eventually(() => linesOf(run, "ERROR").length > 0, "the refusal");
      const [line] = linesOf(run, "ERROR");
      assert.doesNotMatch(line, /\n|PRIVATE KEY/);
      assert.ok(line.includes(`tls.keyfile ${pki.serverKey}`), line);
    } finally {
      await run.stop();
    }
  });
});
