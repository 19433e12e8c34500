// The AMQP transport over @cloudamqp/amqp-client's low-level AMQPClient. It only
// adapts: reconnection, retries and policy live in the machines, never here.
import { readFileSync } from "node:fs";
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { Writable } from "node:stream";
import { AMQPClient, AMQPError, type AMQPChannel, type AMQPMessage, type AMQPProperties } from "@cloudamqp/amqp-client";
import type {
  AmqpChannel,
  AmqpConnectOptions,
  AmqpConnection,
  AmqpDelivery,
  AmqpProperties,
  AmqpReturned,
  AmqpTransport,
  QueueOptions,
} from "./transport.ts";

const ignore = () => {};

function toClientProperties(p: AmqpProperties): AMQPProperties {
  return {
    contentType: p.contentType,
    contentEncoding: p.contentEncoding,
    deliveryMode: p.deliveryMode,
    messageId: p.messageId,
    priority: p.priority,
    timestamp: p.timestamp,
    headers: p.headers as AMQPProperties["headers"],
  };
}

function fromClientProperties(p: AMQPProperties): AmqpProperties {
  return {
    contentType: p.contentType,
    contentEncoding: p.contentEncoding,
    deliveryMode: p.deliveryMode,
    messageId: p.messageId,
    priority: p.priority,
    timestamp: p.timestamp,
    headers: p.headers as Record<string, unknown> | undefined,
  };
}

class ClientChannel implements AmqpChannel {
  onReturn: (returned: AmqpReturned) => void = ignore;
  onClose: (reason?: Error) => void = ignore;
  private notifiedClose = false;
  // ES private: the client's channel leads to the connection and its TLS key, and
  // must stay out of anything that serializes an actor's context.
  readonly #ch: AMQPChannel;
  private readonly forget: (ch: ClientChannel) => void;
  /**
   * Publisher confirms, tracked here rather than by the client: its own tracking
   * scans the unconfirmed list on every ack, and leaves a publish's confirm
   * promise without a handler when the write itself fails (an unhandled
   * rejection). Tags count publishes since confirm.select, as the broker does.
   */
  private confirming = false;
  private nextTag = 1;
  private readonly awaitingConfirm = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();

  constructor(ch: AMQPChannel, forget: (ch: ClientChannel) => void) {
    this.#ch = ch;
    this.forget = forget;
    // The client reports a broker-initiated close here; a lost connection is
    // forwarded by ClientConnection, a close of ours by close().
    ch.onerror = (reason) => this.closedBy(new Error(reason));
    ch.onReturn = (m: AMQPMessage) =>
      this.onReturn({
        replyCode: m.replyCode ?? 0,
        replyText: m.replyText ?? "",
        exchange: m.exchange,
        routingKey: m.routingKey,
        properties: fromClientProperties(m.properties),
      });
  }

  get id() {
    return this.#ch.id;
  }
  get closed() {
    return this.#ch.closed;
  }

  closedBy(reason?: Error) {
    if (this.notifiedClose) return;
    this.notifiedClose = true;
    const error = reason ?? new Error("channel closed");
    for (const waiting of this.awaitingConfirm.values()) waiting.reject(error);
    this.awaitingConfirm.clear();
    this.forget(this);
    this.onClose(reason);
  }

  private settle(tag: number, multiple: boolean, nack: boolean) {
    const done = (t: number) => {
      const waiting = this.awaitingConfirm.get(t);
      if (!waiting) return;
      this.awaitingConfirm.delete(t);
      if (nack) waiting.reject(new Error("nacked by the broker"));
      else waiting.resolve();
    };
    if (!multiple) return done(tag);
    // Insertion order is tag order: settle from the oldest up to `tag`.
    for (const t of this.awaitingConfirm.keys()) {
      if (t > tag) break;
      done(t);
    }
  }

  async confirmSelect() {
    await this.#ch.confirmSelect();
    // The client now thinks it tracks confirms; take that over (see awaitingConfirm).
    const ch = this.#ch as unknown as { confirmId: number; publishConfirmed: (tag: number, multiple: boolean, nack: boolean) => void };
    ch.confirmId = 0;
    ch.publishConfirmed = (tag, multiple, nack) => this.settle(tag, multiple, nack);
    this.confirming = true;
    this.nextTag = 1;
  }
  prefetch(count: number) {
    return this.#ch.basicQos(count);
  }
  async exchangeDeclare(name: string, type: string, durable: boolean, args?: Record<string, unknown>) {
    await this.#ch.exchangeDeclare(name, type, { durable }, args as Record<string, string>);
  }
  async queueDeclare(name: string, o: QueueOptions) {
    const ok = await this.#ch.queueDeclare(
      name,
      { durable: o.durable ?? false, exclusive: o.exclusive ?? false, autoDelete: o.autoDelete ?? false },
      o.arguments as Record<string, string | number | boolean>,
    );
    return ok.name;
  }
  async queueBind(queue: string, exchange: string, bindingKey: string) {
    await this.#ch.queueBind(queue, exchange, bindingKey);
  }
  async queueDelete(name: string) {
    await this.#ch.queueDelete(name);
  }
  async exchangeDelete(name: string) {
    await this.#ch.exchangeDelete(name);
  }
  /**
   * The publishes of one turn of the event loop leave in one write: the client
   * writes each publish to the socket on its own, a system call per message.
   */
  private batchWrites() {
    const socket = (this.#ch.connection as unknown as { socket?: Writable }).socket;
    if (!socket || socket.writableCorked > 0) return;
    socket.cork();
    setImmediate(() => socket.uncork());
  }

  publish(exchange: string, routingKey: string, body: Uint8Array, properties: AmqpProperties, mandatory: boolean): Promise<void> {
    this.batchWrites();
    const sent = this.#ch.basicPublish(exchange, routingKey, body, toClientProperties(properties), mandatory);
    if (!this.confirming) return sent.then(() => undefined);
    const tag = this.nextTag++;
    return new Promise<void>((resolve, reject) => {
      this.awaitingConfirm.set(tag, { resolve, reject });
      sent.catch((error: Error) => {
        if (this.awaitingConfirm.delete(tag)) reject(error);
      });
    });
  }
  async consume(queue: string, onDelivery: (d: AmqpDelivery) => void) {
    const consumer = await this.#ch.basicConsume(queue, { noAck: false }, (m: AMQPMessage) => {
      onDelivery({
        deliveryTag: m.deliveryTag,
        exchange: m.exchange,
        routingKey: m.routingKey,
        redelivered: m.redelivered,
        body: (m.body as Uint8Array | null) ?? new Uint8Array(0),
        properties: fromClientProperties(m.properties),
      });
    });
    return consumer.tag;
  }
  ack(deliveryTag: number, multiple: boolean) {
    this.#ch.basicAck(deliveryTag, multiple).catch(ignore);
  }
  reject(deliveryTag: number, requeue: boolean) {
    this.#ch.basicReject(deliveryTag, requeue).catch(ignore);
  }
  async close() {
    if (!this.#ch.closed) await this.#ch.close().catch(ignore);
    this.closedBy();
  }
}

class ClientConnection implements AmqpConnection {
  onClose: (reason?: Error) => void = ignore;
  onBlocked: (reason: string) => void = ignore;
  onUnblocked: () => void = ignore;
  private readonly channels = new Set<ClientChannel>();
  private notifiedClose = false;
  // ES private, like ClientChannel's: the client holds the TLS key material.
  readonly #client: AMQPClient;

  constructor(client: AMQPClient) {
    this.#client = client;
    client.onerror = ignore; // surfaced through ondisconnect and channel closes instead
    client.ondisconnect = (error) => this.closedBy(error ?? new Error("connection lost"));
    client.onblocked = (reason) => this.onBlocked(reason);
    client.onunblocked = () => this.onUnblocked();
  }

  get closed() {
    return this.#client.closed;
  }

  private closedBy(reason?: Error) {
    for (const ch of [...this.channels]) ch.closedBy(reason);
    if (this.notifiedClose) return;
    this.notifiedClose = true;
    this.onClose(reason);
  }

  async openChannel(): Promise<AmqpChannel> {
    const ch = new ClientChannel(await this.#client.channel(), (c) => this.channels.delete(c));
    this.channels.add(ch);
    return ch;
  }

  async close() {
    if (!this.#client.closed) await this.#client.close().catch(ignore);
    this.closedBy();
  }
}

/**
 * A connect failure that already says what is wrong and how to fix it: TLS
 * verification, unusable key files, a refused login. `kind` tells the connection
 * machine not to add its "is RabbitMQ running?" hint.
 */
export class AmqpConnectError extends Error {
  constructor(
    message: string,
    readonly kind: "tls" | "config" | "auth",
  ) {
    super(message);
    this.name = "AmqpConnectError";
  }
}

type TlsFiles = { ca?: Buffer; cert?: Buffer; key?: Buffer };
type TlsSettings = NonNullable<AmqpConnectOptions["tls"]>;
type SocketError = Error & { code?: string; reason?: string; host?: string; cert?: { subjectaltname?: string } };

/** Collapses an error text to one line, keeping OpenSSL's reason rather than its file and line. */
function oneLine(message: string): string {
  const openssl = /error:[0-9A-Fa-f]+:[^:]*:[^:]*:([^:\n]+)/.exec(message);
  return (openssl ? openssl[1] : message).replace(/\s+/g, " ").replace(/[\s:]+$/, "").trim();
}

function readTlsFile(key: "ca_cert" | "certfile" | "keyfile", path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    throw new AmqpConnectError(`tls.${key} ${path}: cannot read it (${e.code ?? oneLine(e.message)}); check the path and that this user may read it`, "config");
  }
}

/**
 * Reads fedora-messaging's ca_cert / certfile / keyfile and checks them here, so
 * a bad file is named instead of surfacing as an OpenSSL decoder error. Nothing
 * of the key's content ever goes into a message.
 */
function loadTlsFiles(tls: TlsSettings | undefined): TlsFiles | undefined {
  if (!tls) return undefined;
  const files: TlsFiles = {};
  if (tls.caCert) {
    files.ca = readTlsFile("ca_cert", tls.caCert);
    try {
      new X509Certificate(files.ca);
    } catch (error) {
      throw new AmqpConnectError(`tls.ca_cert ${tls.caCert}: not a PEM certificate (${oneLine((error as Error).message)}); point it at the CA bundle that signed the broker's certificate`, "config");
    }
  }
  if (tls.certFile) files.cert = readTlsFile("certfile", tls.certFile);
  if (tls.keyFile) files.key = readTlsFile("keyfile", tls.keyFile);
  if (files.cert && files.key) {
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(files.cert);
    } catch (error) {
      throw new AmqpConnectError(`tls.certfile ${tls.certFile}: not a PEM certificate (${oneLine((error as Error).message)}); point it at the client certificate`, "config");
    }
    let privateKey: ReturnType<typeof createPrivateKey>;
    try {
      privateKey = createPrivateKey(files.key);
    } catch (error) {
      throw new AmqpConnectError(`tls.keyfile ${tls.keyFile}: not an unencrypted PEM private key (${oneLine((error as Error).message)}); point it at the key of tls.certfile`, "config");
    }
    let matches = true;
    try {
      matches = certificate.checkPrivateKey(privateKey);
    } catch {
      // A runtime without checkPrivateKey: the handshake will tell.
    }
    if (!matches) throw new AmqpConnectError(`tls.keyfile ${tls.keyFile} is not the private key of tls.certfile ${tls.certFile}; give the key that belongs to that certificate`, "config");
  }
  return files;
}

const UNTRUSTED = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "INVALID_CA",
]);
const EXPIRED = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"]);
/** The broker's alert when it refuses our client certificate (or its absence). */
const CLIENT_CERT_REFUSED = /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_REQUIRED|CERTIFICATE_UNKNOWN|HANDSHAKE_FAILURE|ACCESS_DENIED)/;

/**
 * The library's error carries its client (and so the TLS key material): only its
 * words and code travel on, in one line.
 */
function plainError(message: string, code: string | undefined): Error {
  const error = new Error(oneLine(message));
  return code ? Object.assign(error, { code }) : error;
}

/** One line: what failed, the runtime's code and words for it, and the fix. */
function explainConnectError(error: unknown, socketError: SocketError | undefined, u: URL, tls: TlsSettings | undefined): Error {
  if (error instanceof AmqpConnectError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const endpoint = `${u.hostname}:${u.port || (u.protocol === "amqps:" ? 5671 : 5672)}`;
  const code = socketError?.code ?? (error as { code?: string }).code;
  const detail = `${code ? `${code}: ` : ""}${oneLine(socketError?.message ?? message)}`;

  const login = /ACCESS_REFUSED - Login was refused[^(]*/.exec(message);
  if (login) {
    const user = decodeURIComponent(u.username) || "guest";
    return new AmqpConnectError(`the broker at ${endpoint} refused the login of user ${user} (403 ACCESS_REFUSED); check the user name and password in the URL`, "auth");
  }
  const vhost = /NOT_ALLOWED - access to vhost '([^']*)' refused for user '([^']*)'/.exec(message);
  if (vhost) {
    return new AmqpConnectError(`user ${vhost[2]} may not use vhost ${vhost[1]} on ${endpoint} (530 NOT_ALLOWED); grant it (rabbitmqctl set_permissions, or setup-broker --apply) or fix the vhost in the URL`, "auth");
  }
  const noVhost = /NOT_ALLOWED - vhost (.*) not found/.exec(message);
  if (noVhost) {
    return new AmqpConnectError(`vhost ${noVhost[1]} does not exist on ${endpoint} (530 NOT_ALLOWED); create it (rabbitmqctl add_vhost) or fix the vhost in the URL (the vhost "/" is written %2F)`, "auth");
  }
  if (u.protocol !== "amqps:") return plainError(message, code);

  if (code && UNTRUSTED.has(code)) {
    const by = tls?.caCert ? `not signed by a CA in tls.ca_cert (${tls.caCert})` : "not signed by a CA this system trusts";
    return new AmqpConnectError(`TLS: the certificate of ${endpoint} is ${by} (${detail}); set tls.ca_cert to the CA that signed the broker's certificate`, "tls");
  }
  if (code && EXPIRED.has(code)) {
    return new AmqpConnectError(`TLS: the certificate of ${endpoint} is outside its validity period (${detail}); renew the broker's certificate or check this machine's clock`, "tls");
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID" || /does not match certificate's altnames/.test(message)) {
    const names = socketError?.cert?.subjectaltname;
    return new AmqpConnectError(
      `TLS: the certificate of ${endpoint} is not valid for host ${u.hostname} (${detail}); connect with a host name the certificate names${names ? ` (${names})` : ""}, or fix its subjectAltName`,
      "tls",
    );
  }
  if (code === "ERR_SSL_WRONG_VERSION_NUMBER" || /wrong version number/.test(message)) {
    return new AmqpConnectError(`TLS: ${endpoint} did not answer with TLS (${detail}); use the broker's TLS port (usually 5671) with amqps://, or amqp:// for a plain port`, "tls");
  }
  if ((code && CLIENT_CERT_REFUSED.test(code)) || CLIENT_CERT_REFUSED.test(message.toUpperCase().replace(/ /g, "_"))) {
    const sent = tls?.certFile ? `refused the client certificate tls.certfile (${tls.certFile})` : "wants a client certificate and none is configured";
    return new AmqpConnectError(`TLS: the broker at ${endpoint} ${sent} (${detail}); set tls.certfile and tls.keyfile to a certificate signed by a CA the broker trusts`, "tls");
  }
  if ((code && /^ERR_(SSL|TLS|OSSL)_/.test(code)) || /SSL routines|TLS|handshake/i.test(message)) {
    return new AmqpConnectError(`TLS: the handshake with ${endpoint} failed (${detail}); check that it is the broker's TLS port and the tls settings`, "tls");
  }
  return plainError(message, code);
}

/**
 * @cloudamqp/amqp-client leaves a few promises without a handler when the socket
 * dies under it: the confirm of a publish whose write failed, the CANCEL_OK it
 * sends after a server-side consumer cancel. Their errors are already reported
 * through the connection's close, so those (and only those: AMQPError) are let
 * go instead of crashing the process; anything else still does.
 */
let libraryRejectionsGuarded = false;
function guardLibraryRejections() {
  if (libraryRejectionsGuarded) return;
  libraryRejectionsGuarded = true;
  process.on("unhandledRejection", (reason) => {
    if (reason instanceof AMQPError) return;
    throw reason;
  });
}

export const amqpTransport: AmqpTransport = {
  async connect(url: string, options: AmqpConnectOptions): Promise<AmqpConnection> {
    guardLibraryRejections();
    const u = new URL(url);
    if (options.heartbeatSeconds !== undefined) u.searchParams.set("heartbeat", String(options.heartbeatSeconds));
    if (options.name) u.searchParams.set("name", options.name);
    const secure = u.protocol === "amqps:";
    const tls = secure ? options.tls : undefined;
    // The client reads `?insecure` from the URL; the machine warns about it at start.
    if (tls?.insecure) u.searchParams.set("insecure", "");
    const files = loadTlsFiles(tls);
    if (secure && files?.cert && !u.username) {
      // fedora-messaging uses EXTERNAL here; @cloudamqp/amqp-client only speaks PLAIN and
      // would silently log in as guest, so this is refused instead.
      throw new AmqpConnectError(
        `${u.protocol}//${u.host}${u.pathname} has no user name and tls.certfile is set, which asks for EXTERNAL (client certificate) authentication, but @cloudamqp/amqp-client only supports PLAIN; put the user name and password in the URL (amqps://user:password@${u.host}${u.pathname}), the certificate is still presented`,
        "config",
      );
    }
    const client = new AMQPClient(u.toString(), files, null);
    let socketError: SocketError | undefined;
    try {
      const connecting = client.connect();
      // The client keeps only the message of a socket error; the code (and, for a
      // host name mismatch, the certificate's names) is read from the socket itself.
      client.socket?.once("error", (error: SocketError) => (socketError ??= error));
      await connecting;
    } catch (error) {
      throw explainConnectError(error, socketError, u, tls);
    }
    return new ClientConnection(client);
  },
};
