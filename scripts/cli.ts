#!/usr/bin/env -S npx tsx
// fedmsg-migration-tools: the command line. Every command ends up running a
// manifest through the same root actor; the single-bridge commands just build a
// one-entry manifest from their flags, as the Python tools take them.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { appendFileSync } from "node:fs";
import { loadManifest, parseManifest, type Manifest } from "../schema/manifest.ts";
import { createLogger, type LogFormat } from "../lib/log.ts";
import { deepMerge, readToml, resolveAmqpUrl, resolveTls, type Toml } from "../lib/config.ts";
import { runManifest } from "../actors/runtime.ts";
import { amqpTransport } from "../actors/amqp.ts";
import { zmqTransport } from "../actors/zmq.ts";
import type { VerifierFinding } from "../lib/verifier-tracker.ts";
import { diagramCommand } from "./diagram.ts";
import { setupBrokerCommand } from "./setup-broker.ts";

class UsageError extends Error {}

const GLOBAL: ParseArgsConfig["options"] = {
  "amqp-url": { type: "string" },
  conf: { type: "string" },
  "log-format": { type: "string", default: "human" },
  http: { type: "string" },
  inspect: { type: "string" },
  help: { type: "boolean", short: "h" },
};

interface Command {
  summary: string;
  usage: string;
  options: ParseArgsConfig["options"];
  run: (values: Record<string, unknown>) => Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  zmq_to_amqp: {
    summary: "Forward fedmsg messages from ZeroMQ endpoints to an AMQP exchange (zmq.topic)",
    usage: "zmq_to_amqp --zmq-endpoint E [--zmq-endpoint E …] [--topic T …] [--exchange zmq.topic]",
    options: {
      "zmq-endpoint": { type: "string", multiple: true },
      topic: { type: "string", multiple: true },
      exchange: { type: "string" },
    },
    run: (v) => {
      const conf = loadConf(v);
      const section = (conf?.zmq_to_amqp ?? {}) as Toml;
      const endpoints = (v["zmq-endpoint"] as string[] | undefined) ?? (section.zmq_endpoints as string[] | undefined);
      if (!endpoints?.length) throw new UsageError("zmq_to_amqp: --zmq-endpoint is required (or zmq_endpoints in [zmq_to_amqp] of --conf)");
      return runSingle(v, conf, {
        bridges: [
          {
            name: "main",
            kind: "zmq_to_amqp",
            zmq: { endpoints, topics: (v.topic as string[] | undefined) ?? (section.topics as string[] | undefined) ?? [""] },
            amqp: { broker: "main", exchange: (v.exchange as string | undefined) ?? (section.exchange as string | undefined) ?? "zmq.topic" },
            ...signaturesFromConf(conf),
          },
        ],
      });
    },
  },
  amqp_to_zmq: {
    summary: "Republish AMQP messages (amq.topic) in the fedmsg format on a ZeroMQ PUB socket",
    usage: "amqp_to_zmq [--publish-endpoint tcp://*:9940] [--remote-publish] [--queue NAME] [--exchange amq.topic] [--binding-key K …] [--prefetch N]",
    options: {
      "publish-endpoint": { type: "string", default: "tcp://*:9940" },
      "remote-publish": { type: "boolean", default: false },
      queue: { type: "string", default: "" },
      exchange: { type: "string", default: "amq.topic" },
      "binding-key": { type: "string", multiple: true },
      prefetch: { type: "string", default: "1000" },
    },
    run: (v) => {
      const conf = loadConf(v);
      return runSingle(v, conf, {
        bridges: [
          {
            name: "main",
            kind: "amqp_to_zmq",
            ...signingFromConf(conf),
            zmq: { publish_endpoint: v["publish-endpoint"], remote_publish: v["remote-publish"] },
            amqp: {
              broker: "main",
              exchange: v.exchange,
              queue: v.queue,
              binding_keys: (v["binding-key"] as string[] | undefined) ?? ["#"],
              prefetch: positiveInt(v.prefetch, "--prefetch"),
            },
          },
        ],
      });
    },
  },
  verify_missing: {
    summary: "Report every message seen on only one side (ZeroMQ or AMQP)",
    usage: "verify_missing --zmq-endpoint E [--zmq-endpoint E …] [--window S] [--match-interval S] [--check-interval S] [--max-pending N] [--report-json FILE]",
    options: {
      "zmq-endpoint": { type: "string", multiple: true },
      window: { type: "string", default: "60" },
      "match-interval": { type: "string", default: "1" },
      "check-interval": { type: "string", default: "10" },
      "max-pending": { type: "string", default: "200000" },
      "report-json": { type: "string" },
    },
    run: (v) => {
      const conf = loadConf(v);
      const endpoints = (v["zmq-endpoint"] as string[] | undefined) ?? (((conf?.zmq_to_amqp ?? {}) as Toml).zmq_endpoints as string[] | undefined);
      if (!endpoints?.length) throw new UsageError("verify_missing: --zmq-endpoint is required");
      return runSingle(v, conf, {
        verifiers: [
          {
            name: "main",
            zmq: { endpoints },
            amqp: { broker: "main" },
            window: positiveNumber(v.window, "--window"),
            match_interval: positiveNumber(v["match-interval"], "--match-interval"),
            check_interval: positiveNumber(v["check-interval"], "--check-interval"),
            max_pending: positiveInt(v["max-pending"], "--max-pending"),
            report_json: v["report-json"] ?? null,
          },
        ],
      });
    },
  },
  run: {
    summary: "Run every bridge, verifier and publisher of a topology manifest",
    usage: "run --manifest FILE [--http ADDR]",
    options: { manifest: { type: "string" } },
    run: async (v) => {
      if (!v.manifest) throw new UsageError("run: --manifest FILE is required");
      return runLoaded(v, await loadManifest(v.manifest as string));
    },
  },
  diagram: {
    summary: "Write every state machine as a Mermaid stateDiagram-v2, generated from the machine definitions",
    usage: "diagram [--out docs/machines] [--check]",
    options: { out: { type: "string", default: "docs/machines" }, check: { type: "boolean", default: false } },
    run: (v) => diagramCommand({ out: v.out as string, check: v.check as boolean }),
  },
  "setup-broker": {
    summary: "Declare a manifest's exchanges and print (or --apply through rabbitmqctl) least-privilege users, permissions and topic permissions",
    usage: "setup-broker --manifest FILE [--apply]",
    options: { manifest: { type: "string" }, apply: { type: "boolean", default: false } },
    run: (v) => {
      if (!v.manifest) throw new UsageError("--manifest FILE is required");
      return setupBrokerCommand({ manifest: v.manifest as string, apply: v.apply as boolean, "amqp-url": v["amqp-url"] as string | undefined });
    },
  },
  validate: {
    summary: "Check a topology manifest and print every mistake with its path and fix",
    usage: "validate --manifest FILE",
    options: { manifest: { type: "string" } },
    run: async (v) => {
      if (!v.manifest) throw new UsageError("validate: --manifest FILE is required");
      const result = await loadManifest(v.manifest as string);
      if (!result.ok) {
        for (const error of result.errors) process.stderr.write(error + "\n");
        return 2;
      }
      process.stdout.write(`${v.manifest}: valid\n`);
      return 0;
    },
  },
};

function loadConf(v: Record<string, unknown>): Toml | undefined {
  return v.conf ? readToml(v.conf as string) : undefined;
}

/** fedmsg's own keys in a `[fedmsg]` section: validate_signatures, ca_cert_location, crl_location, routing_policy, routing_nitpicky. */
function signaturesFromConf(conf: Toml | undefined) {
  const f = conf?.fedmsg as Toml | undefined;
  if (!f?.validate_signatures) return {};
  return {
    signatures: {
      validate: true,
      ca_cert: f.ca_cert_location ?? null,
      crl: f.crl_location ?? null,
      routing_policy: f.routing_policy ?? {},
      routing_nitpicky: f.routing_nitpicky ?? false,
    },
  };
}

/** `[fedmsg] sign_messages = true` with `certname` and `ssldir` (fedmsg's names). */
function signingFromConf(conf: Toml | undefined) {
  const f = conf?.fedmsg as Toml | undefined;
  if (!f?.sign_messages) return {};
  return { signing: { certname: f.certname, ssldir: f.ssldir ?? "/etc/pki/fedmsg" } };
}

function positiveNumber(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, got ${JSON.stringify(value)}`);
  return n;
}

function positiveInt(value: unknown, flag: string): number {
  const n = positiveNumber(value, flag);
  if (!Number.isInteger(n)) throw new UsageError(`${flag} must be a whole number, got ${JSON.stringify(value)}`);
  return n;
}

/** A one-entry manifest from flags, validated like any manifest file. */
function runSingle(v: Record<string, unknown>, conf: Toml | undefined, entries: Record<string, unknown>): Promise<number> {
  const url = resolveAmqpUrl(v["amqp-url"] as string | undefined, conf);
  const tls = resolveTls(url, conf);
  const raw = deepMerge({ brokers: { main: { url, ...(tls ? { tls } : {}) } } }, entries);
  return runLoaded(v, parseManifest(JSON.stringify(raw), { file: "(command line)", env: {} }));
}

async function runLoaded(v: Record<string, unknown>, result: ReturnType<typeof parseManifest>): Promise<number> {
  if (!result.ok) {
    for (const error of result.errors) process.stderr.write(error + "\n");
    return 2;
  }
  let manifest: Manifest = result.manifest;
  if (v.http) manifest = { ...manifest, http: { ...manifest.http, listen: v.http as string } };
  const format = v["log-format"] as LogFormat;
  const logger = createLogger({ format });
  const report: Record<string, (finding: VerifierFinding) => void> = {};
  for (const verifier of manifest.verifiers) {
    const file = verifier.report_json;
    if (file) report[verifier.name] = (finding) => appendFileSync(file, JSON.stringify(finding) + "\n");
  }
  return runManifest(manifest, { transports: { amqp: amqpTransport, zmq: zmqTransport }, logger, report, inspect: v.inspect as string | undefined });
}

function help(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(16)} ${c.summary}`);
  return `usage: fedmsg-migration-tools <command> [options]\n\ncommands:\n${lines.join("\n")}\n\nglobal options:\n  --amqp-url URL       broker URL (else $AMQP_URL, else amqp_url of $FEDORA_MESSAGING_CONF or /etc/fedora-messaging/config.toml, else amqp://guest:guest@localhost:5672/%2F)\n  --conf FILE          the Python tool's config.toml ([zmq_to_amqp] exchange, topics, zmq_endpoints)\n  --log-format F       human (default) or json\n  --http ADDR          serve /live, /ready, /metrics, /actors and the status page on ADDR (host:port)\n  --inspect WS_URL      stream XState inspection events to a Stately inspector (e.g. ws://localhost:8080)
  --help               this text, or a command's own with <command> --help\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(help());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`unknown command ${JSON.stringify(name)}; commands: ${Object.keys(COMMANDS).join(", ")}\n`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({ args: rest, options: { ...GLOBAL, ...command.options }, allowPositionals: true, strict: true });
    if (values.help) {
      process.stdout.write(`usage: fedmsg-migration-tools ${command.usage} [--amqp-url URL] [--conf FILE] [--log-format human|json] [--http ADDR]\n\n${command.summary}.\n`);
      return 0;
    }
    if (positionals.length) throw new UsageError(`${name}: unexpected argument ${JSON.stringify(positionals[0])}`);
    if (values["log-format"] !== "human" && values["log-format"] !== "json") throw new UsageError(`--log-format must be human or json`);
    return await command.run(values);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${name}: ${message}\n`);
    return error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS") ? 2 : 1;
  }
}

const isEntry = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/scripts\//, "/scripts/"));
if (isEntry) main(process.argv.slice(2)).then((code) => process.exit(code));
