// Least privilege on RabbitMQ for a manifest: which user each broker entry logs
// in as, the permissions (configure / write / read regexes on the vhost) and the
// topic permissions (routing-key regexes per topic exchange) that user needs, the
// exchanges to declare, and the rabbitmqctl commands that grant it all.
// Pure: no I/O; scripts/setup-broker.ts prints or applies what this returns.
//
// What each role needs, in RabbitMQ's terms (https://www.rabbitmq.com/docs/access-control):
//   zmq_to_amqp   declares and writes its exchange (zmq.topic), topic-writes only the
//                 prefixes it subscribes to; an alternate exchange adds write on it and
//                 read on the exchange; on_refused dead-letter adds write on that exchange.
//   amqp_sample   writes amq.topic (or its exchange) with its one routing key.
//   amqp_to_zmq   declares, binds (write) and reads its queue, reads its exchange, and may
//                 bind only its binding keys (topic read); a queue dead-letter exchange adds
//                 write on it, which RabbitMQ demands of whoever declares such a queue.
//   verifier      like amqp_to_zmq on each of its exchanges, binding "#"; it declares the
//                 exchanges it reads that are not amq.* (actors/verify-feed.ts).
// Nobody but zmq_to_amqp may write zmq.topic, and nobody but native publishers amq.topic.
import type { Manifest } from "../schema/manifest.ts";
import { redactUrl } from "./redact.ts";

/** Routing key of the amqp_sample demo publisher (actors/samples.ts). */
export const AMQP_SAMPLE_ROUTING_KEY = "org.fedoraproject.demo.native.sample";
/** Prefix of server-named queues (amqp_to_zmq with queue ""). */
const SERVER_NAMED_QUEUE = "amq\\.gen-.*";

export interface Permissions {
  configure: string;
  write: string;
  read: string;
}

export interface TopicPermission {
  exchange: string;
  write: string;
  read: string;
}

export interface BrokerUser {
  /** Broker entries (manifest keys) that log in as this user. */
  brokers: string[];
  user: string;
  vhost: string;
  /** The environment variable holding the password, for add_user / change_password. */
  passwordEnv: string;
  /** Who needs the grants, e.g. `zmq_to_amqp:from-fedmsg publishes to zmq.topic`. */
  roles: string[];
  permissions: Permissions;
  topicPermissions: TopicPermission[];
}

export interface ExchangeDeclaration {
  /** The broker entry whose URL reaches the vhost. */
  broker: string;
  name: string;
  type: "topic" | "fanout";
  arguments?: Record<string, string>;
  /**
   * `bridge`: a bridge declares it exactly so at start, so any other settings are an
   * error; `if-missing`: declared when absent, left as it is when it exists.
   */
  mode: "bridge" | "if-missing";
  /** Who uses it, for the printed plan. */
  usedBy: string[];
}

export interface BrokerSetupPlan {
  /** Virtual hosts the broker URLs name, other than the default "/". */
  vhosts: string[];
  /** Host names of the brokers: rabbitmqctl reaches one node, so --apply needs exactly one. */
  hosts: string[];
  users: BrokerUser[];
  exchanges: ExchangeDeclaration[];
  /** Things the operator should know: guest logins, users shared between roles, … */
  warnings: string[];
}

/** The environment variable setup-broker reads a user's password from. */
export function passwordEnvOf(user: string): string {
  return `FEDMSG_BROKER_PASSWORD_${user.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

/** A regex matching `text` literally (RabbitMQ's patterns are PCRE, matched unanchored). */
export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** `^(a|b)$` of the alternatives, or `^$` (nothing) when there are none; `.*` absorbs the rest. */
function anchored(alternatives: Iterable<string>): string {
  const list = [...new Set(alternatives)];
  if (list.length === 0) return "^$";
  if (list.includes(".*")) return "^.*$";
  return `^(${list.sort().join("|")})$`;
}

/** ZeroMQ subscription prefixes as routing-key alternatives; `[]` or `""` means every topic. */
function prefixAlternatives(prefixes: readonly string[]): string[] {
  if (prefixes.length === 0 || prefixes.includes("")) return [".*"];
  return prefixes.map((p) => `${escapeRegex(p)}.*`);
}

interface Grants {
  brokers: Set<string>;
  user: string;
  vhost: string;
  hostname: string;
  roles: string[];
  kinds: Set<string>;
  configure: Set<string>;
  write: Set<string>;
  read: Set<string>;
  topics: Map<string, { write: Set<string>; read: Set<string> }>;
}

function topicOf(g: Grants, exchange: string) {
  let t = g.topics.get(exchange);
  if (!t) g.topics.set(exchange, (t = { write: new Set(), read: new Set() }));
  return t;
}

interface Login {
  user: string;
  /** The URL names no user: the client logs in as guest. */
  implicit: boolean;
  vhost: string;
  hostname: string;
}

function loginOf(url: string): Login {
  const u = new URL(url);
  const user = decodeURIComponent(u.username);
  return { user: user || "guest", implicit: !user, vhost: decodeURIComponent(u.pathname.slice(1)) || "/", hostname: u.hostname };
}

/** Users, permissions, topic permissions and exchanges for a validated manifest. */
export function brokerSetupPlan(manifest: Manifest): BrokerSetupPlan {
  const warnings: string[] = [];
  const grantsByLogin = new Map<string, Grants>();
  const exchanges = new Map<string, ExchangeDeclaration>();

  const grantsOf = (broker: string): Grants => {
    const login = loginOf(manifest.brokers[broker]!.url);
    const key = `${login.hostname}\u0000${login.vhost}\u0000${login.user}`;
    let g = grantsByLogin.get(key);
    if (!g) {
      g = { brokers: new Set(), user: login.user, vhost: login.vhost, hostname: login.hostname, roles: [], kinds: new Set(), configure: new Set(), write: new Set(), read: new Set(), topics: new Map() };
      grantsByLogin.set(key, g);
    }
    g.brokers.add(broker);
    return g;
  };
  const declare = (broker: string, name: string, type: "topic" | "fanout", mode: "bridge" | "if-missing", usedBy: string, args?: Record<string, string>) => {
    if (name.startsWith("amq.")) return; // the broker's own, always there
    // Broker entries that reach the same vhost share its exchanges.
    const u = new URL(manifest.brokers[broker]!.url);
    const key = `${u.host}${u.pathname}\u0000${name}`;
    const existing = exchanges.get(key);
    if (existing) {
      existing.usedBy.push(usedBy);
      // What a bridge declares wins over a mere "if missing".
      if (mode === "bridge" && existing.mode !== "bridge") Object.assign(existing, { type, mode, arguments: args });
      return;
    }
    exchanges.set(key, { broker, name, type, mode, usedBy: [usedBy], ...(args ? { arguments: args } : {}) });
  };

  for (const bridge of manifest.bridges) {
    const broker = bridge.amqp.broker;
    const g = grantsOf(broker);
    if (bridge.kind === "zmq_to_amqp") {
      const id = `zmq_to_amqp:${bridge.name}`;
      const { exchange, alternate_exchange: ae, on_refused, dead_letter_exchange: dlx } = bridge.amqp;
      g.kinds.add("writer");
      g.roles.push(`${id} publishes to ${exchange}, topics ${bridge.zmq.topics.length === 0 || bridge.zmq.topics.includes("") ? "(all)" : bridge.zmq.topics.map((t) => `${t}*`).join(" ")}`);
      if (!exchange.startsWith("amq.")) g.configure.add(escapeRegex(exchange));
      g.write.add(escapeRegex(exchange));
      for (const p of prefixAlternatives(bridge.zmq.topics)) topicOf(g, exchange).write.add(p);
      declare(broker, exchange, "topic", "bridge", id, ae ? { "alternate-exchange": ae } : undefined);
      if (ae) {
        // exchange.declare with an alternate-exchange checks read on the exchange and write on the AE.
        g.configure.add(escapeRegex(ae));
        g.write.add(escapeRegex(ae));
        g.read.add(escapeRegex(exchange));
        g.roles.push(`${id} sends unroutable messages to ${ae}`);
        declare(broker, ae, "fanout", "bridge", id);
      }
      if (on_refused === "dead-letter" && dlx) {
        g.write.add(escapeRegex(dlx));
        g.roles.push(`${id} dead-letters refused messages to ${dlx}`);
        declare(broker, dlx, "fanout", "if-missing", id);
      }
    } else {
      const id = `amqp_to_zmq:${bridge.name}`;
      const { exchange, queue, binding_keys, dead_letter_exchange: dlx } = bridge.amqp;
      const q = queue === "" ? SERVER_NAMED_QUEUE : escapeRegex(queue);
      g.kinds.add("reader");
      g.roles.push(`${id} reads ${exchange} through ${queue === "" ? "a server-named queue" : `queue ${queue}`}, binding ${binding_keys.join(" ")}`);
      g.configure.add(q);
      g.write.add(q);
      g.read.add(q);
      g.read.add(escapeRegex(exchange));
      for (const k of binding_keys) topicOf(g, exchange).read.add(escapeRegex(k));
      declare(broker, exchange, "topic", "if-missing", id);
      if (dlx) {
        // Declaring a queue with x-dead-letter-exchange checks write on that exchange.
        g.write.add(escapeRegex(dlx));
        g.roles.push(`${id} declares its queue with dead-letter exchange ${dlx}`);
        declare(broker, dlx, "fanout", "if-missing", id);
      }
    }
  }

  for (const verifier of manifest.verifiers) {
    const id = `verify:${verifier.name}`;
    const broker = verifier.amqp.broker;
    const g = grantsOf(broker);
    const q = escapeRegex(verifier.amqp.queue);
    g.kinds.add("reader");
    g.roles.push(`${id} reads ${verifier.amqp.exchanges.join(" ")} through queue ${verifier.amqp.queue}`);
    g.configure.add(q);
    g.write.add(q);
    g.read.add(q);
    for (const exchange of verifier.amqp.exchanges) {
      g.read.add(escapeRegex(exchange));
      topicOf(g, exchange).read.add("#");
      if (!exchange.startsWith("amq.")) g.configure.add(escapeRegex(exchange));
      declare(broker, exchange, "topic", "if-missing", id);
    }
  }

  for (const publisher of manifest.publishers) {
    if (publisher.kind !== "amqp_sample") continue;
    const id = `publish:${publisher.name}`;
    const g = grantsOf(publisher.broker);
    g.kinds.add("writer");
    g.roles.push(`${id} publishes ${AMQP_SAMPLE_ROUTING_KEY} to ${publisher.exchange}`);
    g.write.add(escapeRegex(publisher.exchange));
    topicOf(g, publisher.exchange).write.add(escapeRegex(AMQP_SAMPLE_ROUTING_KEY));
    declare(publisher.broker, publisher.exchange, "topic", "if-missing", id);
  }

  const users: BrokerUser[] = [];
  for (const g of grantsByLogin.values()) {
    const brokers = [...g.brokers];
    const where = brokers.map((b) => `brokers.${b}`).join(", ");
    const login = loginOf(manifest.brokers[brokers[0]!]!.url);
    if (login.implicit) {
      warnings.push(`${where}: the URL names no user, so the bridges log in as guest; give it its own user (amqp://USER:PASSWORD@${login.hostname}/…) to apply least privilege`);
      continue;
    }
    if (g.user === "guest") {
      warnings.push(`${where}: logs in as guest, the administrator of a fresh RabbitMQ, which setup-broker leaves alone; give it its own user (amqp://USER:PASSWORD@${login.hostname}/…) to apply least privilege`);
      continue;
    }
    if (g.kinds.size > 1) {
      warnings.push(`${where}: user ${g.user} both publishes and consumes, so it gets both grants; for least privilege give the readers a broker entry of their own (same host, another user)`);
    }
    users.push({
      brokers,
      user: g.user,
      vhost: g.vhost,
      passwordEnv: passwordEnvOf(g.user),
      roles: g.roles,
      permissions: { configure: anchored(g.configure), write: anchored(g.write), read: anchored(g.read) },
      topicPermissions: [...g.topics]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([exchange, t]) => ({ exchange, write: anchored(t.write), read: anchored(t.read) })),
    });
  }
  const hosts = [...new Set(Object.values(manifest.brokers).map((b) => new URL(b.url).hostname))];
  if (hosts.length > 1) warnings.push(`the brokers are on ${hosts.length} hosts (${hosts.join(", ")}); rabbitmqctl reaches one node, so run each host's commands there`);
  const vhosts = [...new Set(Object.values(manifest.brokers).map((b) => loginOf(b.url).vhost))].filter((v) => v !== "/").sort();
  return { vhosts, hosts, users, exchanges: [...exchanges.values()], warnings };
}

/** One rabbitmqctl invocation; `stdinEnv` names the variable whose value goes to its standard input. */
export interface RabbitmqctlCommand {
  args: string[];
  stdinEnv?: string;
  /** Used instead when the user already exists (change_password for add_user). */
  ifExists?: RabbitmqctlCommand;
}

/** The commands that create `user` and grant exactly its permissions (replacing earlier ones). */
export function rabbitmqctlCommands(user: BrokerUser): RabbitmqctlCommand[] {
  const { vhost } = user;
  return [
    { args: ["add_user", user.user], stdinEnv: user.passwordEnv, ifExists: { args: ["change_password", user.user], stdinEnv: user.passwordEnv } },
    { args: ["set_permissions", "-p", vhost, user.user, user.permissions.configure, user.permissions.write, user.permissions.read] },
    ...user.topicPermissions.map((t) => ({ args: ["set_topic_permissions", "-p", vhost, user.user, t.exchange, t.write, t.read] })),
  ];
}

/** A word for a POSIX shell: single-quoted unless plainly safe. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:%@=+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command as a shell line; the password is read from its variable and piped in, never written out. */
export function shellLine(command: RabbitmqctlCommand): string {
  const line = ["rabbitmqctl", ...command.args].map(shellQuote).join(" ");
  const run = command.stdinEnv ? `printf '%s' "$${command.stdinEnv}" | ${line}` : line;
  return command.ifExists ? `${run} || ${shellLine(command.ifExists)}` : run;
}

/** The whole plan as a reviewable shell script (credentials only as variable references). */
export function planScript(plan: BrokerSetupPlan, manifest: Manifest, source: string): string[] {
  const out = [`# setup-broker --manifest ${source}: least-privilege users for its bridges, verifiers and publishers.`];
  out.push("# Review, then run these lines on the broker host or use setup-broker --apply; passwords come from the variables named.");
  for (const w of plan.warnings) out.push(`# warning: ${w}`);
  if (plan.users.length > 0 || plan.vhosts.length > 0) out.push("set -eu");
  for (const vhost of plan.vhosts) out.push(`rabbitmqctl list_vhosts name | grep -qxF ${shellQuote(vhost)} || rabbitmqctl add_vhost ${shellQuote(vhost)}`);
  for (const user of plan.users) {
    const urls = user.brokers.map((b) => `brokers.${b} (${redactUrl(manifest.brokers[b]!.url)})`).join(", ");
    out.push("", `# user ${user.user} on vhost ${user.vhost}, for ${urls}:`);
    for (const role of user.roles) out.push(`#   ${role}`);
    out.push(`: "\${${user.passwordEnv}:?set ${user.passwordEnv} to the password of ${user.user} (the one in its broker URL)}"`);
    for (const command of rabbitmqctlCommands(user)) out.push(shellLine(command));
  }
  if (plan.exchanges.length > 0) {
    out.push("", "# exchanges (setup-broker declares them over AMQP):");
    for (const e of plan.exchanges) out.push(`#   ${describeExchange(e)}`);
  }
  return out;
}

/** `zmq.topic (topic, durable alternate-exchange=zmq.unroutable)`. */
export function exchangeSettings(e: ExchangeDeclaration): string {
  const args = e.arguments ? ` ${Object.entries(e.arguments).map(([k, v]) => `${k}=${v}`).join(" ")}` : "";
  return `${e.name} (${e.type}, durable${args})`;
}

export function describeExchange(e: ExchangeDeclaration): string {
  return `${exchangeSettings(e)} on brokers.${e.broker}, for ${[...new Set(e.usedBy)].join(", ")}${e.mode === "if-missing" ? "; left as it is if it exists" : ""}`;
}
