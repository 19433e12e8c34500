// Test support: start a manifest's actor system on given transports, and stop it.
import { after, before } from "node:test";
import { spawn, type SpawnOptions } from "node:child_process";
import { AMQPClient, type AMQPChannel, type AMQPMessage } from "@cloudamqp/amqp-client";
import { createActor, waitFor, type AnyActorLogic, type AnyActorRef, type SimulatedClock } from "xstate";
import { parseManifest, type Manifest } from "../../schema/manifest.ts";
import { provideSystem } from "../../actors/index.ts";
import { planSystem, type PlanOptions } from "../../lib/plan.ts";
import { memoryLogger } from "../../lib/log.ts";
import { stateString } from "../../lib/status.ts";
import type { Transports } from "../../actors/transport.ts";
import type { SystemContext } from "../../machines/system.ts";

export const AMQP_URL = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672/%2F";

export function manifestOf(raw: Record<string, unknown>): Manifest {
  const result = parseManifest(JSON.stringify(raw), { file: "(test)", env: {} });
  if (!result.ok) throw new Error(result.errors.join("\n"));
  return result.manifest;
}

export interface StartOptions extends Partial<PlanOptions> {
  /** XState's SimulatedClock, so every timer of every machine is driven by the test. */
  clock?: SimulatedClock;
  /** Replaces some of the root's child logic (e.g. a child that crashes). */
  actors?: Record<string, AnyActorLogic>;
}

export function startSystem(raw: Record<string, unknown>, transports: Transports, options: StartOptions = {}) {
  const logger = memoryLogger();
  const manifest = manifestOf(raw);
  const { clock, actors, ...plan } = options;
  const machine = actors ? provideSystem(transports).provide({ actors: actors as never }) : provideSystem(transports);
  const now = clock ? () => clock.now() : undefined;
  const system = createActor(machine, { input: planSystem(manifest, { logger, now, ...plan }), ...(clock ? { clock } : {}) });
  system.start();
  const ref = (id: string): AnyActorRef => {
    // Children of the root by id; deeper actors (channels, sockets) by their system id.
    const found = (system.getSnapshot().context as SystemContext).refs[id] ?? system.system.get(id);
    if (!found) throw new Error(`no actor ${id}`);
    return found;
  };
  return {
    system,
    logger,
    ref,
    /** Waits until actor `id` is in a state whose dotted name starts with `state`. */
    async until(id: string, state: string, timeout = 10_000) {
      await waitFor(ref(id), (s) => stateString(s.value).startsWith(state), { timeout });
    },
    async stop(timeout = 15_000) {
      system.send({ type: "STOP" });
      await waitFor(system, (s) => s.status === "done", { timeout });
    },
  };
}

/** Resolves when `check` holds, polling every 20 ms; rejects with `what` after `timeout`. */
export async function eventually(check: () => boolean, what: string, timeout = 15_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeout) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A free-enough loopback port for a ZeroMQ endpoint in this run. */
export function freePort(): number {
  return 20000 + Math.floor(Math.random() * 20000);
}

export const unique = (prefix: string) => `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

/** How to run scripts/cli.ts in a child process with the runtime running the tests (Node or Deno). */
export function cliCommand(args: string[]): [string, string[]] {
  const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
  return deno ? [deno.execPath(), ["run", "-A", "scripts/cli.ts", ...args]] : [process.execPath, ["--import", "tsx", "scripts/cli.ts", ...args]];
}

/** An exclusive queue bound `#` on `exchange` (which must exist), collecting what arrives. */
export async function collect(ch: AMQPChannel, exchange: string): Promise<AMQPMessage[]> {
  const q = await ch.queueDeclare("", { exclusive: true });
  await ch.queueBind(q.name, exchange, "#");
  const messages: AMQPMessage[] = [];
  await ch.basicConsume(q.name, { noAck: true }, (m) => void messages.push(m));
  return messages;
}

/** A child process whose stdout and stderr are collected: `out()`, `err()`, and its exit code. */
export function spawnCaptured(command: string, args: readonly string[], options: SpawnOptions = {}) {
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  return { child, out: () => out, err: () => err, exited };
}

/**
 * A channel of the test's own on the local RabbitMQ, opened before the file's
 * tests and closed after them: `const amqp = testChannel(); … amqp.ch.basicPublish(…)`.
 */
export function testChannel() {
  const handle = {} as { client: AMQPClient; ch: AMQPChannel };
  before(async () => {
    handle.client = new AMQPClient(AMQP_URL);
    await handle.client.connect();
    handle.ch = await handle.client.channel();
  });
  after(() => handle.client.close());
  return handle;
}
