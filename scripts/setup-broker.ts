// setup-broker --manifest F [--apply] [--amqp-url URL]: declares the manifest's
// exchanges over AMQP, and prints (or, with --apply, runs through rabbitmqctl) the
// least-privilege users, permissions and topic permissions of lib/broker-permissions.ts.
// Passwords are never generated nor written anywhere: the printed commands read them
// from FEDMSG_BROKER_PASSWORD_<USER>, and --apply takes them from there too.
import { execFileSync } from "node:child_process";
import { loadManifest, type Manifest } from "../schema/manifest.ts";
import {
  brokerSetupPlan,
  describeExchange,
  exchangeSettings,
  planScript,
  rabbitmqctlCommands,
  shellLine,
  type BrokerSetupPlan,
  type ExchangeDeclaration,
  type RabbitmqctlCommand,
} from "../lib/broker-permissions.ts";
import { redactText, redactUrl } from "../lib/redact.ts";
import { amqpTransport } from "../actors/amqp.ts";
import type { AmqpChannel, AmqpConnection, AmqpTransport } from "../actors/transport.ts";

export interface SetupBrokerValues {
  manifest: string;
  apply: boolean;
  "amqp-url"?: string;
}

export interface SetupBrokerIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env: Record<string, string | undefined>;
  /** Runs `rabbitmqctl -q <args>` with `input` on its standard input; returns its stdout. */
  rabbitmqctl: (args: string[], input?: string) => string;
  transport: AmqpTransport;
}

function runRabbitmqctl(args: string[], input?: string): string {
  return execFileSync("rabbitmqctl", ["-q", ...args], { encoding: "utf8", input, timeout: 120_000, stdio: ["pipe", "pipe", "pipe"] });
}

/** The first meaningful line of a failed command, for a one-line message. */
function failure(error: unknown): string {
  const e = error as { code?: string; stderr?: string; stdout?: string; message?: string };
  if (e.code === "ENOENT") return "rabbitmqctl is not installed here";
  const text = `${e.stderr ?? ""}\n${e.stdout ?? ""}`.split("\n").map((l) => l.trim()).find((l) => l && !/^Error:?$/.test(l));
  return redactText(text ?? e.message ?? String(error));
}

/** stdout, stderr, the process environment, the real rabbitmqctl and AMQP transport. */
export function defaultSetupBrokerIo(): SetupBrokerIo {
  return {
    out: (line) => process.stdout.write(line + "\n"),
    err: (line) => process.stderr.write(line + "\n"),
    env: process.env,
    rabbitmqctl: runRabbitmqctl,
    transport: amqpTransport,
  };
}

export async function setupBrokerCommand(values: SetupBrokerValues): Promise<number> {
  return setupBroker(values, defaultSetupBrokerIo());
}

export async function setupBroker(values: SetupBrokerValues, io: SetupBrokerIo): Promise<number> {
  const loaded = loadManifest(values.manifest, io.env);
  if (!loaded.ok) {
    for (const error of loaded.errors) io.err(error);
    return 2;
  }
  const manifest = loaded.manifest;
  const plan = brokerSetupPlan(manifest);

  if (!values.apply) {
    for (const line of planScript(plan, manifest, values.manifest)) io.out(line);
  } else {
    for (const w of plan.warnings) io.out(`# warning: ${w}`);
    const applied = applyUsers(plan, io);
    if (applied !== 0) return applied;
  }
  return declareExchanges(plan, manifest, values["amqp-url"], io);
}

/** Creates the users and grants their permissions with rabbitmqctl; refuses before changing anything when a password is missing. */
function applyUsers(plan: BrokerSetupPlan, io: SetupBrokerIo): number {
  if (plan.users.length === 0 && plan.vhosts.length === 0) return 0;
  if (plan.hosts.length > 1) {
    io.err("setup-broker --apply: the manifest's brokers are on several hosts and rabbitmqctl reaches one node; run setup-broker without --apply and run each host's commands there");
    return 1;
  }
  let existing: Set<string>;
  let vhosts: Set<string>;
  try {
    const listed = JSON.parse(io.rabbitmqctl(["list_users", "--formatter", "json"]) || "[]") as { user: string }[];
    existing = new Set(listed.map((u) => u.user));
    const listedVhosts = JSON.parse(io.rabbitmqctl(["list_vhosts", "name", "--formatter", "json"]) || "[]") as { name: string }[];
    vhosts = new Set(listedVhosts.map((v) => v.name));
  } catch (error) {
    io.err(`setup-broker --apply: cannot list the broker's users and vhosts (${failure(error)}); run it on the broker host as root or rabbitmq, or run the commands setup-broker prints without --apply`);
    return 1;
  }
  const missing = plan.users.filter((u) => !existing.has(u.user) && !io.env[u.passwordEnv]);
  for (const u of missing) {
    io.err(`setup-broker --apply: user ${u.user} does not exist and ${u.passwordEnv} is not set; export ${u.passwordEnv} with the password of its broker URL and run again (nothing was changed)`);
  }
  if (missing.length > 0) return 1;

  for (const vhost of plan.vhosts.filter((v) => !vhosts.has(v))) {
    io.out(`+ ${shellLine({ args: ["add_vhost", vhost] })}`);
    try {
      io.rabbitmqctl(["add_vhost", vhost]);
    } catch (error) {
      io.err(`setup-broker --apply: rabbitmqctl add_vhost ${vhost} failed: ${failure(error)}`);
      return 1;
    }
  }
  for (const user of plan.users) {
    for (const command of rabbitmqctlCommands(user)) {
      let step: RabbitmqctlCommand | undefined = command;
      if (command.args[0] === "add_user") {
        // An existing user keeps its password unless a new one is given.
        step = existing.has(user.user) ? (io.env[user.passwordEnv] ? command.ifExists : undefined) : command;
        if (!step) {
          io.out(`# user ${user.user} exists; its password is left as it is (${user.passwordEnv} is not set)`);
          continue;
        }
      }
      const input = step.stdinEnv ? io.env[step.stdinEnv] : undefined;
      io.out(`+ ${shellLine({ args: step.args, stdinEnv: step.stdinEnv })}`);
      try {
        io.rabbitmqctl(step.args, input);
      } catch (error) {
        io.err(`setup-broker --apply: rabbitmqctl ${step.args[0]} for user ${user.user} failed: ${failure(error)}`);
        return 1;
      }
    }
  }
  return 0;
}

/** What a declare failure means, in one line with its fix. */
function declareFailure(e: ExchangeDeclaration, user: string, message: string): { fatal: boolean; line: string } {
  if (/PRECONDITION_FAILED|406/.test(message)) {
    return e.mode === "bridge"
      ? { fatal: true, line: `exchange ${e.name} exists with other settings (${message}); the bridge declares it as ${exchangeSettings(e)} and would fail the same way at start: delete it and run setup-broker again, or change the manifest` }
      : { fatal: false, line: `# exchange ${e.name} exists with other settings; left as it is` };
  }
  if (/ACCESS_REFUSED|403/.test(message)) {
    return { fatal: true, line: `declaring exchange ${e.name} as user ${user} was refused (${message}); run setup-broker with --amqp-url and an administrator's URL (or --apply first, which grants the manifest's users what they declare)` };
  }
  return { fatal: true, line: `declaring exchange ${e.name} failed: ${message}` };
}

function withVhostOf(login: string, broker: string): string {
  const u = new URL(login);
  u.pathname = new URL(broker).pathname;
  return u.toString();
}

async function declareExchanges(plan: BrokerSetupPlan, manifest: Manifest, amqpUrl: string | undefined, io: SetupBrokerIo): Promise<number> {
  let status = 0;
  const brokers = [...new Set(plan.exchanges.map((e) => e.broker))];
  for (const broker of brokers) {
    const spec = manifest.brokers[broker]!;
    // --amqp-url gives the login (an administrator's); the vhost stays the broker entry's.
    const url = amqpUrl ? withVhostOf(amqpUrl, spec.url) : spec.url;
    const tls =
      url.startsWith("amqps:") && spec.tls
        ? { caCert: spec.tls.ca_cert ?? undefined, certFile: spec.tls.certfile ?? undefined, keyFile: spec.tls.keyfile ?? undefined, insecure: spec.tls.insecure }
        : undefined;
    const user = decodeURIComponent(new URL(url).username) || "guest";
    let connection: AmqpConnection;
    try {
      connection = await io.transport.connect(url, { name: "fedmsg-migration-tools setup-broker", heartbeatSeconds: 10, tls });
    } catch (error) {
      // A login or vhost refusal may just mean the manifest's user does not exist yet.
      const hint = !amqpUrl && (error as { kind?: string }).kind === "auth" ? "; give an administrator's URL with --amqp-url, or run with --apply first" : "";
      io.err(`setup-broker: cannot declare the exchanges of brokers.${broker}: cannot connect to ${redactUrl(url)}: ${redactText((error as Error).message ?? String(error))}${hint}`);
      status = 1;
      continue;
    }
    try {
      let channel: AmqpChannel | undefined;
      for (const e of plan.exchanges.filter((x) => x.broker === broker)) {
        channel ??= await connection.openChannel();
        try {
          await channel.exchangeDeclare(e.name, e.type, true, e.arguments);
          io.out(`# declared exchange ${describeExchange(e)}`);
        } catch (error) {
          // A refused declare closes the channel; the next one gets a fresh channel.
          channel = undefined;
          const verdict = declareFailure(e, user, redactText((error as Error).message ?? String(error)));
          if (verdict.fatal) {
            io.err(`setup-broker: ${verdict.line}`);
            status = 1;
          } else {
            io.out(verdict.line);
          }
        }
      }
    } finally {
      await connection.close().catch(() => {});
    }
  }
  return status;
}
