// A TLS endpoint in front of the local RabbitMQ, made by the test: a throwaway
// CA, a server certificate for `localhost` only, a second (wrong) CA and a client
// certificate, all made with openssl in a temporary directory; and a node:tls
// server on 127.0.0.1 that terminates TLS and pipes each connection to the
// broker's plain AMQP port. The broker itself is left as it is.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type TLSSocket } from "node:tls";
import type { AddressInfo } from "node:net";

export interface TestPki {
  dir: string;
  /** The CA that signed the server and client certificates. */
  caCert: string;
  /** A CA that signed nothing here: verifying the server with it must fail. */
  wrongCaCert: string;
  /** Server certificate: subjectAltName DNS:localhost only (no IP address). */
  serverCert: string;
  serverKey: string;
  /** Server certificate for another name (DNS:broker.invalid), signed by caCert. */
  otherServerCert: string;
  otherServerKey: string;
  /** Client certificate (CN fedmsg-test-client), signed by caCert. */
  clientCert: string;
  clientKey: string;
  remove(): void;
}

function openssl(dir: string, ...args: string[]) {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/** A CA with the extensions strict verifiers (rustls under Deno) insist on. */
function makeCa(dir: string, name: string) {
  openssl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.pem`, "-extensions", "v3_ca", "-config", writeCaConfig(dir, name));
}

function writeCaConfig(dir: string, name: string): string {
  const file = join(dir, `${name}.cnf`);
  writeFileSync(
    file,
    `[req]\ndistinguished_name=dn\n[dn]\n[v3_ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n`,
  );
  return file;
}

function makeLeaf(dir: string, name: string, cn: string, ca: string, ext: string) {
  writeFileSync(join(dir, `${name}.ext`), `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nauthorityKeyIdentifier=keyid\n${ext}\n`);
  openssl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${cn}`, "-keyout", `${name}.key`, "-out", `${name}.csr`);
  openssl(dir, "x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-days", "2", "-out", `${name}.pem`, "-extfile", `${name}.ext`);
}

/** Makes the test PKI in a fresh temporary directory; remove() deletes it. */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "fedmsg-tls-"));
  makeCa(dir, "test-ca");
  makeCa(dir, "wrong-ca");
  makeLeaf(dir, "server", "localhost", "test-ca", "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth");
  makeLeaf(dir, "other", "broker.invalid", "test-ca", "subjectAltName=DNS:broker.invalid\nextendedKeyUsage=serverAuth");
  makeLeaf(dir, "client", "fedmsg-test-client", "test-ca", "extendedKeyUsage=clientAuth");
  return {
    dir,
    caCert: join(dir, "test-ca.pem"),
    wrongCaCert: join(dir, "wrong-ca.pem"),
    serverCert: join(dir, "server.pem"),
    serverKey: join(dir, "server.key"),
    otherServerCert: join(dir, "other.pem"),
    otherServerKey: join(dir, "other.key"),
    clientCert: join(dir, "client.pem"),
    clientKey: join(dir, "client.key"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface TlsProxy {
  port: number;
  /** Common names of the client certificates presented so far (requested, not required). */
  clientNames: string[];
  /** TLS connections that completed the handshake. */
  handshakes: number;
  close(): Promise<void>;
}

export interface TlsProxyOptions {
  /** Which server certificate to present: `localhost` (default) or `other` (broker.invalid). */
  certificate?: "localhost" | "other";
  /** The broker's plain AMQP port. */
  target?: { host: string; port: number };
}

/** Terminates TLS on 127.0.0.1:<free port> and pipes to the broker's AMQP port. */
export async function startTlsProxy(pki: TestPki, options: TlsProxyOptions = {}): Promise<TlsProxy> {
  const target = options.target ?? { host: "127.0.0.1", port: 5672 };
  const other = options.certificate === "other";
  const sockets = new Set<{ destroy(): void }>();
  const proxy: TlsProxy = { port: 0, clientNames: [], handshakes: 0, close: async () => {} };
  const server = createServer(
    {
      cert: readFileSync(other ? pki.otherServerCert : pki.serverCert),
      key: readFileSync(other ? pki.otherServerKey : pki.serverKey),
      ca: readFileSync(pki.caCert),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (tls: TLSSocket) => {
      proxy.handshakes++;
      const peer = tls.getPeerCertificate?.();
      const cn = peer && typeof peer === "object" ? (peer.subject as { CN?: string } | undefined)?.CN : undefined;
      if (cn) proxy.clientNames.push(cn);
      const upstream = netConnect(target.port, target.host);
      sockets.add(tls);
      sockets.add(upstream);
      const end = () => {
        tls.destroy();
        upstream.destroy();
        sockets.delete(tls);
        sockets.delete(upstream);
      };
      tls.on("error", end).on("close", end);
      upstream.on("error", end).on("close", end);
      tls.pipe(upstream).pipe(tls);
    },
  );
  // Failed handshakes (the client refusing our certificate) are expected here.
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  proxy.port = (server.address() as AddressInfo).port;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return proxy;
}
