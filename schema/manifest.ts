/**
 * The topology manifest: which brokers exist, which bridges, verifiers and demo
 * publishers run against them, and how the supervisor behaves (DESIGN.md §3).
 * Reference: docs/manifest.md. Examples: manifests/example-two-brokers.yaml.
 *
 * One Effect Schema is the single source of truth for the shape, the types and
 * the defaults. Loading goes: `${VAR}` substitution → YAML (JSON is YAML) →
 * schema decoding with every issue collected and excess keys rejected →
 * cross-reference checks the schema cannot express (broker references, unique
 * names, two bridges binding one endpoint). Every problem is reported at once,
 * as `<file>: <path>: <what is wrong> (line N); <the fix>`, so an operator fixes
 * a manifest in one pass instead of one error per run.
 */
import { readFileSync } from "node:fs";
import * as Effect from "effect/Effect";
import * as Result from "effect/Result";
import * as Schema from "effect/Schema";
import * as SchemaAST from "effect/SchemaAST";
import * as SchemaIssue from "effect/SchemaIssue";
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import { redactText } from "../lib/redact.ts";

// ─── Defaults shared by the schema and the cross-reference checks ──────────────

/** Where an amqp_to_zmq bridge binds its PUB socket unless told otherwise: fedmsg's usual port. */
export const DEFAULT_PUBLISH_ENDPOINT = "tcp://*:9940";
/** zmq_to_amqp publishes only here; amqp_to_zmq never consumes from it (DESIGN.md §1). */
export const ZMQ_EXCHANGE = "zmq.topic";
/** Native fedora-messaging publishers publish here; amqp_to_zmq consumes it. */
export const AMQP_EXCHANGE = "amq.topic";

const NAME_PATTERN = /^[A-Za-z0-9_.-]+$/;
const NAME_EXPECTED = "a name made of letters, digits, '_', '.' and '-'";

// ─── Schema building blocks ─────────────────────────────────────────────────────

/**
 * What the error formatter and the reader of docs/manifest.md need about a key:
 * an example value in manifest (YAML flow) syntax, and optionally how to fix a bad value.
 */
type KeyHint = { readonly example: string; readonly fix?: string };

/** A key the manifest must spell out. */
function required<S extends Schema.Top>(schema: S, hint: KeyHint): S["Rebuild"] {
  return schema.pipe(Schema.annotateKey<S>({ ...hint }));
}

/**
 * A key that may be left out; `value` (written as in a manifest, so nested
 * defaults apply to it too) takes its place. Nested objects default to `{}`,
 * which is how defaults merge deeply: `buffer: { overflow: spool, spool_dir: … }`
 * keeps the default `max_messages` and `max_bytes`.
 *
 * The default is given on the decoded side (withDecodingDefaultTypeKey) so a
 * value that is present is decoded by `schema` itself, checks included; the
 * encoded-side variant would first match the bare encoded shape and report its
 * issues without the struct-level checks and key annotations.
 */
function withDefault<S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, value: S["Encoded"], hint: KeyHint) {
  const decodedDefault: S["Type"] = Schema.decodeUnknownSync(schema)(value);
  // A fresh copy per manifest: a caller changing its manifest must not change the next one's defaults.
  const defaulted = Schema.withDecodingDefaultTypeKey<S>(Effect.sync(() => structuredClone(decodedDefault)))(schema);
  return defaulted.annotateKey({ ...hint, default: decodedDefault });
}

/** The check annotations: what a valid value looks like, and optionally how to fix one. */
function expecting(expected: string, fix?: string): Schema.Annotations.Filter {
  return fix === undefined ? { expected } : { expected, fix };
}

/** A filter issue whose message already says what is wrong, with its fix. */
function problem(message: string, fix: string): SchemaIssue.InvalidValue {
  return new SchemaIssue.InvalidValue({ message, fix });
}

function wholeNumber(min: number) {
  const ann = expecting(`a whole number ≥ ${min}`);
  return Schema.Number.check(Schema.isInt(ann), Schema.isGreaterThanOrEqualTo(min, ann));
}

function positiveNumber() {
  const ann = expecting("a number > 0");
  return Schema.Number.check(Schema.isFinite(ann), Schema.isGreaterThan(0, ann));
}

const NonEmptyString = Schema.String.check(Schema.isMinLength(1, expecting("a non-empty string")));

const Name = Schema.String.check(Schema.isPattern(NAME_PATTERN, expecting(NAME_EXPECTED)));

function isAmqpUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return (u.protocol === "amqp:" || u.protocol === "amqps:") && u.hostname !== "";
  } catch {
    return false;
  }
}

const AmqpUrl = Schema.String.check(
  Schema.makeFilter<string>(
    (url) => isAmqpUrl(url),
    expecting(
      "an amqp:// or amqps:// URL",
      "write amqp://user:password@host:5672/vhost (amqps://…:5671 for TLS); the vhost \"/\" is written %2F",
    ),
  ),
);

const TCP_ENDPOINT = /^tcp:\/\/(\*|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;
const LOCAL_ENDPOINT = /^(ipc|inproc):\/\/.+$/;

/** `tcp://host:port`, `ipc://path` or `inproc://name`; `*` as host only where the socket binds. */
function zmqEndpoint(mode: "connect" | "bind") {
  const expected =
    mode === "connect"
      ? "a ZeroMQ endpoint to connect to: tcp://host:port, ipc://path or inproc://name"
      : "a ZeroMQ endpoint to bind: tcp://*:port, tcp://host:port, ipc://path or inproc://name";
  return Schema.String.check(
    Schema.makeFilter<string>((endpoint) => {
      if (LOCAL_ENDPOINT.test(endpoint)) return undefined;
      const tcp = TCP_ENDPOINT.exec(endpoint);
      if (tcp === null || Number(tcp[2]) > 65535) return false;
      if (mode === "connect" && tcp[1] === "*") {
        return problem(
          `${JSON.stringify(endpoint)} can only be bound, not connected to`,
          `write the host of the publisher, e.g. tcp://127.0.0.1:${tcp[2]}`,
        );
      }
      return undefined;
    }, expecting(expected)),
  );
}

// ─── Brokers ────────────────────────────────────────────────────────────────────

/** fedora-messaging's `[tls]` keys. */
export const BrokerTlsSpecSchema = Schema.Struct({
  ca_cert: Schema.optionalKey(NonEmptyString.annotateKey({ example: "/etc/fedora-messaging/cacert.pem" })),
  certfile: Schema.optionalKey(NonEmptyString.annotateKey({ example: "/etc/fedora-messaging/fedora-cert.pem" })),
  keyfile: Schema.optionalKey(NonEmptyString.annotateKey({ example: "/etc/fedora-messaging/fedora-key.pem" })),
  insecure: withDefault(Schema.Boolean, false, {
    example: "false",
    fix: "write true (skip server certificate verification, for tests only) or false",
  }),
}).check(
  Schema.makeFilter((tls) => {
    if (tls.certfile !== undefined && tls.keyfile === undefined) {
      return { path: ["keyfile"], issue: problem("certfile is set but keyfile is not", "add keyfile: <the private key of certfile>, or remove certfile") };
    }
    if (tls.keyfile !== undefined && tls.certfile === undefined) {
      return { path: ["certfile"], issue: problem("keyfile is set but certfile is not", "add certfile: <the certificate of keyfile>, or remove keyfile") };
    }
    return undefined;
  }),
);
export type BrokerTlsSpec = typeof BrokerTlsSpecSchema.Type;

export const BrokerSpecSchema = Schema.Struct({
  url: required(AmqpUrl, { example: "amqp://guest:guest@127.0.0.1:5672/%2F" }),
  heartbeat: withDefault(wholeNumber(0), 30, { example: "30", fix: "write the heartbeat interval in whole seconds, e.g. 30 (0 turns heartbeats off)" }),
  max_attempts: withDefault(Schema.NullOr(wholeNumber(1)), null, {
    example: "null",
    fix: "write how many connection attempts to make before giving up, e.g. 10, or null to retry forever",
  }),
  tls: Schema.optionalKey(BrokerTlsSpecSchema.annotateKey({ example: "{ ca_cert: /etc/fedora-messaging/cacert.pem }" })),
});
export type BrokerSpec = typeof BrokerSpecSchema.Type;

// ─── Bridges ────────────────────────────────────────────────────────────────────

export const BufferSpecSchema = Schema.Struct({
  max_messages: withDefault(wholeNumber(1), 100_000, { example: "100000" }),
  max_bytes: withDefault(wholeNumber(1), 268_435_456, { example: "268435456" }),
  overflow: withDefault(Schema.Literals(["drop-newest", "spool"]), "drop-newest", {
    example: "drop-newest",
    fix: "write drop-newest (count and drop what does not fit) or spool (write it to spool_dir)",
  }),
  spool_dir: withDefault(Schema.NullOr(NonEmptyString), null, { example: "/var/spool/fedmsg-migration-tools" }),
}).check(
  Schema.makeFilter((buffer) =>
    buffer.overflow === "spool" && buffer.spool_dir === null
      ? {
          path: ["spool_dir"],
          issue: problem(
            "overflow is spool but no spool_dir is set",
            "add spool_dir: /var/spool/fedmsg-migration-tools (a writable directory), or use overflow: drop-newest",
          ),
        }
      : undefined,
  ),
);
export type BufferSpec = typeof BufferSpecSchema.Type;

/** fedmsg's signature validation settings (`validate_signatures`, `ssldir`, `routing_policy`, …). */
export const SignatureValidationSpecSchema = Schema.Struct({
  validate: withDefault(Schema.Boolean, false, { example: "true" }),
  ca_cert: withDefault(Schema.NullOr(NonEmptyString), null, { example: "/etc/pki/fedmsg/ca.crt" }),
  crl: withDefault(Schema.NullOr(NonEmptyString), null, { example: "/etc/pki/fedmsg/crl.pem" }),
  routing_policy: withDefault(Schema.Record(Schema.String, Schema.Array(Schema.String)), {}, {
    example: "{ org.fedoraproject.prod.bodhi.update.comment: [bodhi-bodhi-web02.iad2.fedoraproject.org] }",
    fix: "map each topic to the list of certificate names allowed to publish it",
  }),
  routing_nitpicky: withDefault(Schema.Boolean, false, {
    example: "false",
    fix: "write true (topics missing from routing_policy are rejected) or false",
  }),
}).check(
  Schema.makeFilter((signatures) =>
    signatures.validate && signatures.ca_cert === null
      ? {
          path: ["ca_cert"],
          issue: problem("validate is true but no ca_cert is set", "add ca_cert: /etc/pki/fedmsg/ca.crt (the CA that signed the publishers' certificates), or set validate: false"),
        }
      : undefined,
  ),
);
export type SignatureValidationSpec = typeof SignatureValidationSpecSchema.Type;

export const ZmqToAmqpSpecSchema = Schema.Struct({
  name: required(Name, { example: "from-fedmsg" }),
  kind: required(Schema.Literal("zmq_to_amqp"), { example: "zmq_to_amqp" }),
  zmq: required(
    Schema.Struct({
      endpoints: required(
        Schema.Array(zmqEndpoint("connect")).check(
          Schema.isMinLength(1, expecting("a non-empty list of ZeroMQ endpoints", "list at least one publisher to subscribe to, e.g. [tcp://127.0.0.1:9940]")),
        ),
        { example: "[tcp://127.0.0.1:9940]" },
      ),
      topics: withDefault(Schema.Array(Schema.String), [], {
        example: "[org.fedoraproject.prod.bodhi.]",
        fix: "write a list of topic prefixes to subscribe to, or [] for every topic",
      }),
    }),
    { example: "{ endpoints: [tcp://127.0.0.1:9940] }" },
  ),
  amqp: required(
    Schema.Struct({
      broker: required(Name, { example: "main" }),
      exchange: withDefault(
        NonEmptyString.check(
          Schema.makeFilter<string>((exchange) =>
            exchange === AMQP_EXCHANGE
              ? problem(
                  `publishing to ${AMQP_EXCHANGE} would loop: amqp_to_zmq bridges consume ${AMQP_EXCHANGE} and would send every message back to ZeroMQ`,
                  `use exchange: ${ZMQ_EXCHANGE} (the default), which exists for bridged fedmsg traffic`,
                )
              : undefined,
          ),
        ),
        ZMQ_EXCHANGE,
        { example: ZMQ_EXCHANGE },
      ),
      alternate_exchange: withDefault(Schema.NullOr(NonEmptyString), null, {
        example: "zmq.unroutable",
        fix: "name an exchange to receive messages no queue is bound for (declared as the exchange's alternate-exchange), or null",
      }),
      on_refused: withDefault(Schema.Literals(["keep", "dead-letter"]), "keep", {
        example: "keep",
        fix: "write keep (hold a message the broker refused, 403, and retry it) or dead-letter (send it to dead_letter_exchange)",
      }),
      dead_letter_exchange: withDefault(Schema.NullOr(NonEmptyString), null, { example: "zmq.refused" }),
    }).check(
      Schema.makeFilter((amqp) =>
        amqp.on_refused === "dead-letter" && amqp.dead_letter_exchange === null
          ? { path: ["dead_letter_exchange"], issue: problem("on_refused is dead-letter but no dead_letter_exchange is set", "add dead_letter_exchange: zmq.refused, or use on_refused: keep") }
          : undefined,
      ),
    ),
    { example: "{ broker: main }" },
  ),
  buffer: withDefault(BufferSpecSchema, {}, { example: "{ max_messages: 100000, overflow: drop-newest }" }),
  window: withDefault(wholeNumber(1), 1000, {
    example: "1000",
    fix: "write how many publisher confirms may be outstanding, e.g. 1000",
  }),
  signatures: Schema.optionalKey(
    SignatureValidationSpecSchema.annotateKey({ example: "{ validate: true, ca_cert: /etc/pki/fedmsg/ca.crt }" }),
  ),
});
export type ZmqToAmqpSpec = typeof ZmqToAmqpSpecSchema.Type;

/** Signing of outgoing fedmsg envelopes: fedmsg's `certname` + `ssldir`, or explicit key and certificate files. */
export const SigningSpecSchema = Schema.Union([
  Schema.Struct({ certname: NonEmptyString, ssldir: NonEmptyString }),
  Schema.Struct({ keyfile: NonEmptyString, certfile: NonEmptyString }),
]).annotate({
  expected: "either { certname, ssldir } or { keyfile, certfile }",
  fix: "write signing: { certname: amqp-bridge, ssldir: /etc/pki/fedmsg } or signing: { keyfile: FILE, certfile: FILE }",
});
export type SigningSpec = typeof SigningSpecSchema.Type;

export const AmqpToZmqSpecSchema = Schema.Struct({
  name: required(Name, { example: "to-fedmsg" }),
  kind: required(Schema.Literal("amqp_to_zmq"), { example: "amqp_to_zmq" }),
  zmq: withDefault(
    Schema.Struct({
      publish_endpoint: withDefault(zmqEndpoint("bind"), DEFAULT_PUBLISH_ENDPOINT, { example: JSON.stringify(DEFAULT_PUBLISH_ENDPOINT) }),
      remote_publish: withDefault(Schema.Boolean, false, {
        example: "false",
        fix: "write false (bind publish_endpoint) or true (connect to a relay at publish_endpoint)",
      }),
    }).check(
      Schema.makeFilter((zmq) =>
        zmq.remote_publish && zmq.publish_endpoint.startsWith("tcp://*:")
          ? {
              path: ["publish_endpoint"],
              issue: problem(
                `remote_publish connects to publish_endpoint, but ${JSON.stringify(zmq.publish_endpoint)} has no host`,
                "write the relay's address, e.g. tcp://relay.example.org:9941, or set remote_publish: false to bind",
              ),
            }
          : undefined,
      ),
    ),
    {},
    { example: `{ publish_endpoint: "${DEFAULT_PUBLISH_ENDPOINT}" }` },
  ),
  amqp: required(
    Schema.Struct({
      broker: required(Name, { example: "main" }),
      exchange: withDefault(
        NonEmptyString.check(
          Schema.makeFilter<string>((exchange) =>
            exchange === ZMQ_EXCHANGE
              ? problem(
                  `consuming from ${ZMQ_EXCHANGE} would loop: that is where zmq_to_amqp bridges publish what came from ZeroMQ`,
                  `use exchange: ${AMQP_EXCHANGE} (the default), where native AMQP publishers publish`,
                )
              : undefined,
          ),
        ),
        AMQP_EXCHANGE,
        { example: AMQP_EXCHANGE },
      ),
      queue: withDefault(Schema.String, "", {
        example: "amqp_to_zmq",
        fix: "write a queue name, or \"\" for a server-named queue that lives as long as the bridge",
      }),
      binding_keys: withDefault(
        Schema.Array(Schema.String).check(Schema.isMinLength(1, expecting("a non-empty list of routing-key patterns", "write [\"#\"] for every message"))),
        ["#"],
        { example: "[\"#\"]" },
      ),
      prefetch: withDefault(wholeNumber(1), 1000, { example: "1000", fix: "write how many unacknowledged deliveries the broker may send, e.g. 1000" }),
      dead_letter_exchange: withDefault(Schema.NullOr(NonEmptyString), null, { example: "amqp_to_zmq.dlx" }),
    }),
    { example: "{ broker: main }" },
  ),
  signing: Schema.optionalKey(SigningSpecSchema.annotateKey({ example: "{ certname: amqp-bridge, ssldir: /etc/pki/fedmsg }" })),
});
export type AmqpToZmqSpec = typeof AmqpToZmqSpecSchema.Type;

export const BridgeSpecSchema = Schema.Union([ZmqToAmqpSpecSchema, AmqpToZmqSpecSchema]);
export type BridgeSpec = typeof BridgeSpecSchema.Type;

// ─── Verifiers ──────────────────────────────────────────────────────────────────

export const VerifierSpecSchema = Schema.Struct({
  name: required(Name, { example: "main" }),
  zmq: required(
    Schema.Struct({
      endpoints: required(
        Schema.Array(zmqEndpoint("connect")).check(
          Schema.isMinLength(1, expecting("a non-empty list of ZeroMQ endpoints", "list the fedmsg endpoints to compare, e.g. [tcp://127.0.0.1:9940]")),
        ),
        { example: "[tcp://127.0.0.1:9940]" },
      ),
    }),
    { example: "{ endpoints: [tcp://127.0.0.1:9940] }" },
  ),
  amqp: required(
    Schema.Struct({
      broker: required(Name, { example: "main" }),
      exchanges: withDefault(
        Schema.Array(NonEmptyString).check(Schema.isMinLength(1, expecting("a non-empty list of exchanges"))),
        [ZMQ_EXCHANGE, AMQP_EXCHANGE],
        { example: `[${ZMQ_EXCHANGE}, ${AMQP_EXCHANGE}]` },
      ),
      queue: withDefault(NonEmptyString, "amqp_bridge_verify_missing", { example: "amqp_bridge_verify_missing" }),
    }),
    { example: "{ broker: main }" },
  ),
  window: withDefault(wholeNumber(1), 60, { example: "60", fix: "write how many seconds a message may wait for its twin, e.g. 60" }),
  match_interval: withDefault(positiveNumber(), 1, { example: "1" }),
  check_interval: withDefault(positiveNumber(), 10, { example: "10" }),
  max_pending: withDefault(wholeNumber(1), 200_000, { example: "200000" }),
  report_json: withDefault(Schema.NullOr(NonEmptyString), null, { example: "/var/lib/fedmsg-migration-tools/missing.json" }),
});
export type VerifierSpec = typeof VerifierSpecSchema.Type;

// ─── Demo publishers ────────────────────────────────────────────────────────────

export const FedmsgSamplePublisherSpecSchema = Schema.Struct({
  name: required(Name, { example: "sample-fedmsg" }),
  kind: required(Schema.Literal("fedmsg_sample"), { example: "fedmsg_sample" }),
  endpoint: required(zmqEndpoint("bind"), { example: "tcp://127.0.0.1:19941" }),
  rate: withDefault(positiveNumber(), 20, { example: "20", fix: "write messages per second, e.g. 20" }),
});
export type FedmsgSamplePublisherSpec = typeof FedmsgSamplePublisherSpecSchema.Type;

export const AmqpSamplePublisherSpecSchema = Schema.Struct({
  name: required(Name, { example: "sample-amqp" }),
  kind: required(Schema.Literal("amqp_sample"), { example: "amqp_sample" }),
  broker: required(Name, { example: "main" }),
  exchange: withDefault(NonEmptyString, AMQP_EXCHANGE, { example: AMQP_EXCHANGE }),
  rate: withDefault(positiveNumber(), 20, { example: "20", fix: "write messages per second, e.g. 20" }),
});
export type AmqpSamplePublisherSpec = typeof AmqpSamplePublisherSpecSchema.Type;

export const PublisherSpecSchema = Schema.Union([FedmsgSamplePublisherSpecSchema, AmqpSamplePublisherSpecSchema]);
export type PublisherSpec = typeof PublisherSpecSchema.Type;

// ─── Process-wide settings ──────────────────────────────────────────────────────

export const SupervisionSpecSchema = Schema.Struct({
  base_delay_ms: withDefault(wholeNumber(0), 500, { example: "500" }),
  max_delay_ms: withDefault(wholeNumber(0), 30_000, { example: "30000" }),
  max_restarts: withDefault(wholeNumber(0), 5, { example: "5" }),
  window_s: withDefault(positiveNumber(), 60, { example: "60" }),
}).check(
  Schema.makeFilter((s) =>
    s.max_delay_ms < s.base_delay_ms
      ? {
          path: ["max_delay_ms"],
          issue: problem(
            `max_delay_ms (${s.max_delay_ms}) is below base_delay_ms (${s.base_delay_ms})`,
            `raise max_delay_ms to at least ${s.base_delay_ms}, or lower base_delay_ms`,
          ),
        }
      : undefined,
  ),
);
export type SupervisionSpec = typeof SupervisionSpecSchema.Type;

export const ShutdownSpecSchema = Schema.Struct({
  drain_timeout_ms: withDefault(wholeNumber(0), 5000, { example: "5000" }),
});
export type ShutdownSpec = typeof ShutdownSpecSchema.Type;

const LISTEN_PATTERN = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;

export const HttpSpecSchema = Schema.Struct({
  listen: withDefault(
    Schema.NullOr(
      Schema.String.check(
        Schema.makeFilter<string>((listen) => {
          const m = LISTEN_PATTERN.exec(listen);
          return m !== null && Number(m[2]) <= 65535;
        }, expecting("host:port to listen on", "write e.g. \"127.0.0.1:9100\", or null to turn the HTTP endpoint off")),
      ),
    ),
    null,
    { example: "\"127.0.0.1:9100\"" },
  ),
});
export type HttpSpec = typeof HttpSpecSchema.Type;

export const ManifestSchema = Schema.Struct({
  brokers: required(
    Schema.Record(Schema.String, BrokerSpecSchema).check(
      Schema.isMinProperties(1, expecting("at least one broker", "add e.g. brokers: { main: { url: \"amqp://guest:guest@127.0.0.1:5672/%2F\" } }")),
    ),
    { example: "{ main: { url: \"amqp://guest:guest@127.0.0.1:5672/%2F\" } }" },
  ),
  bridges: withDefault(Schema.Array(BridgeSpecSchema), [], { example: "[{ name: from-fedmsg, kind: zmq_to_amqp, … }]" }),
  verifiers: withDefault(Schema.Array(VerifierSpecSchema), [], { example: "[{ name: main, zmq: …, amqp: … }]" }),
  publishers: withDefault(Schema.Array(PublisherSpecSchema), [], { example: "[{ name: sample-fedmsg, kind: fedmsg_sample, … }]" }),
  supervision: withDefault(SupervisionSpecSchema, {}, { example: "{ base_delay_ms: 500, max_delay_ms: 30000 }" }),
  shutdown: withDefault(ShutdownSpecSchema, {}, { example: "{ drain_timeout_ms: 5000 }" }),
  http: withDefault(HttpSpecSchema, {}, { example: "{ listen: \"127.0.0.1:9100\" }" }),
});
export type Manifest = typeof ManifestSchema.Type;
/** A manifest as written: every defaulted key optional. */
export type ManifestInput = typeof ManifestSchema.Encoded;

const decodeManifest = Schema.decodeUnknownResult(ManifestSchema);
const DECODE_OPTIONS = { errors: "all", onExcessProperty: "error", reportInput: true } as const;

// ─── Environment substitution ───────────────────────────────────────────────────

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ENV_REFERENCE = /\$\$\{|\$\{([^}]*)\}|\$\{/g;

/** Where a YAML comment starts on this line (a `#` at the start or after a blank, outside quotes), or -1. */
function commentStart(line: string): number {
  let quote: "'" | "\"" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    const prev = i === 0 ? " " : line[i - 1];
    if (quote !== null) {
      if (c === "\\" && quote === "\"") i++;
      else if (c === quote) quote = null;
    } else if (c === "#" && /\s/.test(prev)) {
      return i;
    } else if ((c === "\"" || c === "'") && /[\s[{,:-]/.test(prev)) {
      quote = c;
    }
  }
  return -1;
}

/**
 * Replaces `${VAR}` and `${VAR:-default}` (the default applies when VAR is unset
 * or empty, as in the shell); `$${` stands for a literal `${`. References in
 * comments are left alone. A reference that cannot be resolved stays in the text
 * as written and is reported with its line.
 */
export function substituteEnv(text: string, env: Record<string, string | undefined>): { text: string; errors: string[] } {
  const { text: substituted, errors } = substitute(text, env);
  return { text: substituted, errors };
}

/** substituteEnv, also returning the references left in the text unresolved. */
function substitute(
  text: string,
  env: Record<string, string | undefined>,
): { text: string; errors: string[]; unresolved: string[] } {
  const errors: string[] = [];
  const unresolved: string[] = [];
  const lines = text.split("\n").map((line, index) => {
    const lineNo = index + 1;
    const cut = commentStart(line);
    const body = cut === -1 ? line : line.slice(0, cut);
    const rest = cut === -1 ? "" : line.slice(cut);
    const replaced = body.replace(ENV_REFERENCE, (match: string, inner: string | undefined) => {
      if (match === "$${") return "${";
      if (inner === undefined) {
        errors.push(`line ${lineNo}: "${redactText(line.trim())}" opens "\${" without a closing "}"; write \${NAME} or \${NAME:-default}, or $\${ for a literal \${`);
        return match;
      }
      const sep = inner.indexOf(":-");
      const name = sep === -1 ? inner : inner.slice(0, sep);
      if (!ENV_NAME.test(name)) {
        errors.push(`line ${lineNo}: ${match} is not a valid variable reference; write \${NAME} or \${NAME:-default} with NAME made of letters, digits and _`);
        return match;
      }
      const value = env[name];
      if (sep !== -1) return value === undefined || value === "" ? inner.slice(sep + 2) : value;
      if (value === undefined) {
        errors.push(`line ${lineNo}: environment variable ${name} is not set and ${match} has no default; set ${name}, or write \${${name}:-<default>}`);
        unresolved.push(match);
        return match;
      }
      return value;
    });
    return replaced + rest;
  });
  return { text: lines.join("\n"), errors, unresolved };
}

// ─── Error reporting ────────────────────────────────────────────────────────────

type Segment = string | number;

/** One thing wrong with a manifest, before the file name and line are added. */
interface Problem {
  readonly path: ReadonlyArray<Segment>;
  readonly what: string;
  readonly fix: string;
  /** The offending value, when known: lets an unset `${VAR}` suppress its consequences. */
  readonly input?: unknown;
}

/** `bridges[0].amqp.broker`; keys that are not plain words are quoted: `brokers["a.b"]`. */
export function formatPath(path: ReadonlyArray<Segment>): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) out += (out === "" ? "" : ".") + segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out === "" ? "(top level)" : out;
}

function isRecord(u: unknown): u is Record<string, unknown> {
  return typeof u === "object" && u !== null && !Array.isArray(u);
}

/** A value as an error message shows it: short, credentials masked, never a whole nested structure. */
function render(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(redactText(value.length > 80 ? `${value.slice(0, 77)}...` : value));
  if (value === null) return "null";
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : "a list";
  if (isRecord(value)) {
    const keys = Object.keys(value);
    return keys.length === 0 ? "an empty mapping" : `a mapping with keys ${keys.join(", ")}`;
  }
  return String(value);
}

/** Edits between two words, a swap of two neighbours counting as one (typos like "tsl" for "tls"). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The candidate a typo most likely meant, if one is close enough. */
function closest(word: string, candidates: ReadonlyArray<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

function stringAnnotation(annotations: unknown, key: string): string | undefined {
  if (!isRecord(annotations)) return undefined;
  const value = annotations[key];
  return typeof value === "string" ? value : undefined;
}

/** The key annotations (`example`, `fix`, `default`) of the schema at a location. */
function keyHint(ast: SchemaAST.AST | undefined): { example?: string; fix?: string } {
  const annotations = ast?.context?.annotations;
  return { example: stringAnnotation(annotations, "example"), fix: stringAnnotation(annotations, "fix") };
}

/** In words, what a schema accepts. */
function describe(ast: SchemaAST.AST): string {
  const checks = ast.checks;
  const fromCheck = checks === undefined ? undefined : stringAnnotation(checks[checks.length - 1]?.annotations, "expected");
  const own = fromCheck ?? stringAnnotation(ast.annotations, "expected");
  if (own !== undefined) return own;
  switch (ast._tag) {
    case "String":
      return "a string";
    case "Number":
      return "a number";
    case "Boolean":
      return "true or false";
    case "Null":
      return "null";
    case "Literal":
      return String(ast.literal);
    case "Union":
      return ast.types.every((t) => t._tag === "Literal")
        ? `one of ${ast.types.map(describe).join(", ")}`
        : ast.types.map(describe).join(" or ");
    case "Arrays":
      return "a list";
    case "Objects":
      return ast.propertySignatures.length === 0
        ? "a mapping of names to settings"
        : `a mapping with keys ${ast.propertySignatures.map((p) => String(p.name)).join(", ")}`;
    default:
      return ast._tag;
  }
}

/** The schema of `key` inside `container` (a struct, a record or a list), if it has one. */
function childAst(container: SchemaAST.AST | undefined, key: PropertyKey): SchemaAST.AST | undefined {
  if (container === undefined) return undefined;
  if (container._tag === "Objects") {
    const property = container.propertySignatures.find((p) => p.name === key);
    return property?.type ?? container.indexSignatures[0]?.type;
  }
  if (container._tag === "Arrays") {
    return typeof key === "number" ? (container.elements[key] ?? container.rest[0]) : undefined;
  }
  return undefined;
}

/** The `kind` literals of a union of structs discriminated by `kind`, or undefined. */
function kindsOf(union: SchemaAST.Union): string[] | undefined {
  const kinds: string[] = [];
  for (const member of union.types) {
    if (member._tag !== "Objects") return undefined;
    const kind = member.propertySignatures.find((p) => p.name === "kind")?.type;
    if (kind?._tag !== "Literal" || typeof kind.literal !== "string") return undefined;
    kinds.push(kind.literal);
  }
  return kinds;
}

/** The fix for a bad value when nothing more specific is known. */
function genericFix(path: ReadonlyArray<Segment>, here: SchemaAST.AST | undefined, expected: string): string {
  const hint = keyHint(here);
  if (hint.fix !== undefined) return hint.fix;
  const key = path[path.length - 1];
  if (hint.example !== undefined && typeof key === "string") return `write e.g. ${key}: ${hint.example}`;
  return `write ${expected}`;
}

function inputOf(issue: SchemaIssue.Issue): unknown {
  return SchemaIssue.hasInput(issue) ? issue.input : undefined;
}

/**
 * Walks Effect's issue tree and turns every leaf into a Problem. `here` is the
 * declared schema of the current location (its key annotations give examples
 * and fixes); `container` the struct/list whose children the next Pointer selects.
 */
function collectIssues(
  issue: SchemaIssue.Issue,
  path: ReadonlyArray<Segment>,
  here: SchemaAST.AST | undefined,
  container: SchemaAST.AST | undefined,
  out: Problem[],
  check?: Schema.Annotations.Filter,
): void {
  const key = path[path.length - 1];
  switch (issue._tag) {
    case "Pointer": {
      let next = path;
      let field = here;
      let parent = container;
      for (const segment of issue.path) {
        field = childAst(parent, segment);
        parent = field;
        next = [...next, typeof segment === "symbol" ? String(segment) : segment];
      }
      collectIssues(issue.issue, next, field, undefined, out, check);
      return;
    }
    case "Composite":
      for (const child of issue.issues) collectIssues(child, path, here ?? issue.ast, issue.ast, out, check);
      return;
    case "Encoding":
      collectIssues(issue.issue, path, here ?? issue.ast, container ?? issue.ast, out, check);
      return;
    case "Filter":
      collectIssues(issue.issue, path, here, container, out, issue.filter.annotations);
      return;
    case "MissingKey": {
      const hint = keyHint(here);
      const name = typeof key === "string" ? key : "it";
      out.push({
        path,
        what: "required key is missing",
        fix: hint.example !== undefined ? `add ${name}: ${hint.example}` : `add ${name}`,
      });
      return;
    }
    case "UnexpectedKey": {
      const valid = issue.ast._tag === "Objects" ? issue.ast.propertySignatures.map((p) => String(p.name)) : [];
      const name = String(key);
      const suggestion = closest(name, valid);
      const list = valid.length > 0 ? ` (valid keys here: ${valid.join(", ")})` : "";
      out.push({
        path,
        what: `unknown key ${JSON.stringify(name)}`,
        fix: suggestion !== undefined ? `rename it to ${suggestion}${list}` : `remove it${list}`,
      });
      return;
    }
    case "InvalidType": {
      const input = inputOf(issue);
      const expected = describe(issue.ast);
      let fix = genericFix(path, here, expected);
      if (issue.ast._tag === "Number" && typeof input === "string" && input.trim() !== "" && Number.isFinite(Number(input))) {
        fix = `remove the quotes: write ${input.trim()}, not ${JSON.stringify(input)}`;
      } else if (input === null && issue.ast._tag === "Objects" && typeof key === "string") {
        const hint = keyHint(here);
        fix = here?.context?.annotations?.default !== undefined
          ? `give ${key} its keys, or remove the line to take the defaults`
          : `give ${key} its keys${hint.example === undefined ? "" : `, e.g. ${key}: ${hint.example}`}`;
      }
      out.push({ path, what: `expected ${expected}, got ${render(input)}`, fix, input });
      return;
    }
    case "InvalidValue": {
      const input = inputOf(issue);
      const message = stringAnnotation(issue.annotations, "message");
      const expected = stringAnnotation(check, "expected") ?? "a valid value";
      const fix =
        stringAnnotation(issue.annotations, "fix") ??
        stringAnnotation(check, "fix") ??
        genericFix(path, here, expected);
      out.push({ path, what: message ?? `expected ${expected}, got ${render(input)}`, fix, input });
      return;
    }
    case "AnyOf": {
      const input = inputOf(issue);
      const union = issue.ast;
      const kinds = kindsOf(union);
      if (kinds !== undefined && isRecord(input)) {
        if (issue.issues.length === 1) {
          collectIssues(issue.issues[0], path, here, undefined, out, check);
          return;
        }
        const kind = input.kind;
        const choices = kinds.join(", ");
        if (kind === undefined) {
          out.push({ path: [...path, "kind"], what: "required key is missing", fix: `add kind: one of ${choices}` });
        } else {
          const suggestion = typeof kind === "string" ? closest(kind, kinds) : undefined;
          out.push({
            path: [...path, "kind"],
            what: `${render(kind)} is not a known kind`,
            fix: suggestion !== undefined ? `did you mean ${suggestion}? (kinds: ${choices})` : `use one of ${choices}`,
            input: kind,
          });
        }
        return;
      }
      const described = stringAnnotation(union.annotations, "expected");
      if (described === undefined && issue.issues.length === 1) {
        collectIssues(issue.issues[0], path, here, undefined, out, check);
        return;
      }
      const expected = described ?? (kinds !== undefined ? `a mapping with kind: one of ${kinds.join(", ")}` : describe(union));
      let fix = stringAnnotation(union.annotations, "fix") ?? genericFix(path, here, expected);
      if (kinds !== undefined) fix = "write a mapping with name, kind and the settings of that kind (see docs/manifest.md)";
      if (typeof input === "string" && union.types.every((t) => t._tag === "Literal")) {
        const suggestion = closest(input, union.types.map(describe));
        if (suggestion !== undefined) fix = `did you mean ${suggestion}? (${expected})`;
      }
      out.push({ path, what: `expected ${expected}, got ${render(input)}`, fix, input });
      return;
    }
    case "OneOf":
      out.push({ path, what: "matches more than one alternative", fix: "remove the keys that make it ambiguous", input: inputOf(issue) });
      return;
    case "Forbidden":
      out.push({ path, what: stringAnnotation(issue.annotations, "message") ?? "cannot be checked", fix: "report this as a bug of fedmsg-migration-tools" });
      return;
  }
}

// ─── Cross-reference checks (what one schema node cannot see) ──────────────────

function entries(list: unknown): Array<[number, Record<string, unknown>]> {
  return Array.isArray(list) ? list.flatMap((item, i): Array<[number, Record<string, unknown>]> => (isRecord(item) ? [[i, item]] : [])) : [];
}

/** `tcp://*:9940` and `tcp://127.0.0.1:9940` cannot both be bound on one host. */
function sameBindAddress(a: string, b: string): boolean {
  const ta = TCP_ENDPOINT.exec(a);
  const tb = TCP_ENDPOINT.exec(b);
  if (ta === null || tb === null) return a === b;
  const wildcard = (host: string) => host === "*" || host === "0.0.0.0";
  return ta[2] === tb[2] && (ta[1] === tb[1] || wildcard(ta[1]) || wildcard(tb[1]));
}

function crossCheck(raw: unknown): Problem[] {
  const out: Problem[] = [];
  if (!isRecord(raw)) return out;

  // Broker names become actor ids ("amqp:<broker>") and log fields.
  const brokers = isRecord(raw.brokers) ? raw.brokers : undefined;
  const brokerNames = brokers === undefined ? [] : Object.keys(brokers);
  for (const name of brokerNames) {
    if (!NAME_PATTERN.test(name)) {
      out.push({ path: ["brokers", name], what: `${JSON.stringify(name)} is not a valid broker name`, fix: `rename it to ${NAME_EXPECTED}, e.g. ${name.replace(/[^A-Za-z0-9_.-]+/g, "-")}` });
    }
    const broker = brokers?.[name];
    if (isRecord(broker) && broker.tls !== undefined && typeof broker.url === "string" && broker.url.startsWith("amqp://")) {
      out.push({
        path: ["brokers", name, "tls"],
        what: "tls is set but url uses amqp:// (no TLS), so these certificates would be ignored",
        fix: "use an amqps:// URL (port 5671), or remove tls",
      });
    }
  }

  const checkBroker = (path: ReadonlyArray<Segment>, broker: unknown) => {
    if (brokers === undefined || typeof broker !== "string" || brokerNames.includes(broker)) return;
    const suggestion = closest(broker, brokerNames);
    out.push({
      path,
      what: `${JSON.stringify(broker)} is not a broker of this manifest (brokers: ${brokerNames.join(", ") || "none"})`,
      fix: suggestion !== undefined ? `did you mean ${suggestion}?` : `use one of ${brokerNames.join(", ")}, or add ${broker} under brokers`,
      input: broker,
    });
  };
  for (const section of ["bridges", "verifiers"] as const) {
    for (const [i, item] of entries(raw[section])) {
      if (isRecord(item.amqp)) checkBroker([section, i, "amqp", "broker"], item.amqp.broker);
    }
  }
  for (const [i, item] of entries(raw.publishers)) {
    if (item.kind === "amqp_sample") checkBroker(["publishers", i, "broker"], item.broker);
  }

  // Names identify actors ("zmq_to_amqp:<name>") and metrics: two of a kind would collide.
  const singular = { bridges: "bridge", verifiers: "verifier", publishers: "publisher" } as const;
  for (const section of ["bridges", "verifiers", "publishers"] as const) {
    const seen = new Map<string, number>();
    for (const [i, item] of entries(raw[section])) {
      if (typeof item.name !== "string") continue;
      const first = seen.get(item.name);
      if (first === undefined) {
        seen.set(item.name, i);
      } else {
        out.push({
          path: [section, i, "name"],
          what: `${JSON.stringify(item.name)} is already the name of ${section}[${first}]`,
          fix: `give every ${singular[section]} its own name, e.g. ${item.name}-${i}`,
          input: item.name,
        });
      }
    }
  }

  // Only one socket can bind an address: amqp_to_zmq bridges (unless remote_publish) and fedmsg_sample publishers bind.
  const binders: Array<{ path: Segment[]; endpoint: string }> = [];
  for (const [i, item] of entries(raw.bridges)) {
    if (item.kind !== "amqp_to_zmq") continue;
    const zmq = isRecord(item.zmq) ? item.zmq : {};
    if (zmq.remote_publish === true) continue;
    const endpoint = zmq.publish_endpoint === undefined ? DEFAULT_PUBLISH_ENDPOINT : zmq.publish_endpoint;
    if (typeof endpoint === "string") binders.push({ path: ["bridges", i, "zmq", "publish_endpoint"], endpoint });
  }
  for (const [i, item] of entries(raw.publishers)) {
    if (item.kind === "fedmsg_sample" && typeof item.endpoint === "string") binders.push({ path: ["publishers", i, "endpoint"], endpoint: item.endpoint });
  }
  binders.forEach((binder, j) => {
    const earlier = binders.slice(0, j).find((other) => sameBindAddress(other.endpoint, binder.endpoint));
    if (earlier === undefined) return;
    out.push({
      path: binder.path,
      what: `${JSON.stringify(binder.endpoint)} is already bound by ${formatPath(earlier.path.slice(0, 2))} (${earlier.endpoint}), and two sockets cannot bind one address`,
      fix: "give one of them another port, or set zmq.remote_publish: true on the bridge to connect to a relay instead",
      input: binder.endpoint,
    });
  });
  return out;
}

// ─── Parsing ────────────────────────────────────────────────────────────────────

export type ParseManifestResult = { ok: true; manifest: Manifest } | { ok: false; errors: string[] };

export interface ParseManifestOptions {
  /** Named in every error message. */
  file: string;
  /** For `${VAR}` substitution; process.env when left out. */
  env?: Record<string, string | undefined>;
}

type YamlDocument = ReturnType<typeof parseDocument>;

/** The 1-based line of the deepest node of `path` present in the YAML document. */
function lineOf(doc: YamlDocument, lines: LineCounter, path: ReadonlyArray<Segment>): number | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined = isMap(node) || isSeq(node) || isScalar(node) ? node.range?.[0] : undefined;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (pair === undefined) break;
      if (isScalar(pair.key) && pair.key.range) offset = pair.key.range[0];
      node = pair.value;
    } else if (isSeq(node) && typeof segment === "number") {
      node = node.items[segment];
      if ((isMap(node) || isSeq(node) || isScalar(node)) && node.range) offset = node.range[0];
    } else {
      break;
    }
  }
  return offset === undefined ? undefined : lines.linePos(offset).line;
}

function yamlFix(code: string): string {
  switch (code) {
    case "DUPLICATE_KEY":
      return "remove or rename one of the two keys";
    case "BAD_INDENT":
    case "MISSING_CHAR":
    case "UNEXPECTED_TOKEN":
      return "check the indentation and the ':' after each key on that line";
    case "MULTIPLE_DOCS":
      return "keep one document per manifest (remove the extra ---)";
    default:
      return "fix the YAML syntax there (indentation, a missing ':', an unclosed quote or bracket)";
  }
}

function defaultEnv(): Record<string, string | undefined> {
  return typeof process === "undefined" ? {} : process.env;
}

/**
 * Parses a manifest (YAML or JSON) and reports every problem at once, each as
 * `<file>: <path>: <what is wrong> (line N); <the fix>`. Credentials in URLs
 * are masked in messages.
 */
export function parseManifest(text: string, options: ParseManifestOptions): ParseManifestResult {
  const { file } = options;
  const substituted = substitute(text, options.env ?? defaultEnv());
  const envErrors = substituted.errors.map((e) => `${file}: ${e}`);
  const unresolved = substituted.unresolved;

  const lines = new LineCounter();
  const doc = parseDocument(substituted.text, { lineCounter: lines, merge: true, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const yamlErrors = doc.errors.map((error) => {
      const pos = lines.linePos(error.pos[0]);
      const message = error.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
      return redactText(`${file}: line ${pos.line}, column ${pos.col}: ${message}; ${yamlFix(error.code)}`);
    });
    return { ok: false, errors: [...envErrors, ...yamlErrors] };
  }

  const raw: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (raw === null || raw === undefined) {
    return {
      ok: false,
      errors: [...envErrors, `${file}: (top level): the manifest is empty; add at least brokers: { main: { url: "amqp://guest:guest@127.0.0.1:5672/%2F" } } (see docs/manifest.md)`],
    };
  }

  const problems: Problem[] = [];
  const decoded = decodeManifest(raw, DECODE_OPTIONS);
  if (Result.isFailure(decoded)) collectIssues(decoded.failure.issue, [], undefined, undefined, problems);
  problems.push(...crossCheck(raw));

  // An unset ${VAR} is already reported; what its unresolved text then breaks is noise.
  const relevant = problems.filter(
    (p) => !(typeof p.input === "string" && unresolved.some((reference) => (p.input as string).includes(reference))),
  );
  const seen = new Set<string>();
  const located = relevant
    .map((p, order) => ({ ...p, order, line: lineOf(doc, lines, p.path) }))
    .sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity) || a.order - b.order);
  const schemaErrors: string[] = [];
  for (const p of located) {
    const message = `${file}: ${formatPath(p.path)}: ${p.what}${p.line === undefined ? "" : ` (line ${p.line})`}; ${p.fix}`;
    if (seen.has(message)) continue;
    seen.add(message);
    schemaErrors.push(message);
  }

  const errors = [...envErrors, ...schemaErrors];
  if (errors.length > 0 || Result.isFailure(decoded)) return { ok: false, errors };
  return { ok: true, manifest: decoded.success };
}

/** Reads and parses a manifest file; a file that cannot be read is one more error. */
export function loadManifest(path: string, env: Record<string, string | undefined> = defaultEnv()): ParseManifestResult {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { ok: false, errors: [`${path}: cannot read the manifest (${reason}); check the path given with --manifest`] };
  }
  return parseManifest(text, { file: path, env });
}
