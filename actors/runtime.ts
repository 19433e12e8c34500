// Runs a manifest: starts the root actor with the real transports, shows a live
// status, turns SIGINT/SIGTERM into a bounded drain, prints the summary lines,
// and resolves to the process exit code.
import { createActor, type AnyActorRef } from "xstate";
import type { Manifest } from "../schema/manifest.ts";
import type { Transports } from "./transport.ts";
import { provideSystem } from "./index.ts";
import { signatureHooks } from "./signatures.ts";
import { startHttpServer, type HttpServer } from "./http.ts";
import { planSystem, type PlanOptions } from "../lib/plan.ts";
import { describeActor, publicView, stateString, summaryLines, type ActorInfo } from "../lib/status.ts";
import { createWebSocketInspector } from "@statelyai/inspect";
import type { SystemContext } from "../machines/system.ts";

export interface RunOptions extends PlanOptions {
  transports: Transports;
  /** Where the status and summary go (stdout). */
  out?: NodeJS.WriteStream;
  /** Redraw in place (a terminal) or print plain lines; off for tests. */
  status?: "auto" | "off";
  statusIntervalMs?: number;
  signals?: boolean;
  /** ws://HOST:PORT of a Stately inspector (@statelyai/inspect's WebSocket server). */
  inspect?: string;
  /** Lets a caller (tests, HTTP) reach the running system. */
  onStarted?: (system: AnyActorRef) => void;
}

function flatten(info: ActorInfo, depth = 0, out: string[] = [], rates?: Map<string, number>, elapsed = 1): string[] {
  const counters = Object.entries(info.counters)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  const previous = rates?.get(info.id);
  const rate = previous !== undefined && info.counters.forwarded !== undefined ? ` (${Math.round((info.counters.forwarded - previous) / elapsed)}/s)` : "";
  if (info.counters.forwarded !== undefined) rates?.set(info.id, info.counters.forwarded);
  out.push(`${"  ".repeat(depth)}${info.id.padEnd(28 - 2 * depth)} ${info.state.padEnd(22)} ${counters}${rate}`);
  for (const child of info.children) flatten(child, depth + 1, out, rates, elapsed);
  return out;
}

export async function runManifest(manifest: Manifest, options: RunOptions): Promise<number> {
  const out = options.out ?? process.stdout;
  const hooks = signatureHooks(manifest, options.logger);
  // Only what publicView lets through leaves the process: no sockets, no credentials.
  const inspector = options.inspect
    ? createWebSocketInspector({
        url: options.inspect,
        sanitizeContext: (context) => publicView(context),
        sanitizeEvent: (event) => publicView(event) as typeof event,
        // Promise and callback actors carry their input (a broker URL…) in their snapshot.
        serialize: (event) =>
          "snapshot" in event && event.snapshot && typeof event.snapshot === "object"
            ? ({ ...event, snapshot: { ...(event.snapshot as object), input: undefined, output: undefined, error: undefined } as unknown } as typeof event)
            : event,
      })
    : undefined;
  if (inspector) options.logger.log("info", "system", `streaming inspection events to ${options.inspect}`);
  const system = createActor(provideSystem(options.transports), {
    input: planSystem(manifest, { ...options, validate: { ...hooks.validate, ...options.validate }, encode: { ...hooks.encode, ...options.encode } }),
    ...(inspector ? { inspect: inspector.inspect } : {}),
  });
  const refsOf = () => (system.getSnapshot().context as SystemContext).refs;

  // Before the system starts, so that a taken port fails at once, with its fix.
  let http: HttpServer | undefined;
  if (manifest.http.listen) {
    try {
      http = await startHttpServer({ listen: manifest.http.listen, system, logger: options.logger });
      options.logger.log("info", "system", `serving /live, /ready, /metrics, /actors and the status page at ${http.url}`);
    } catch (error) {
      out.write(`fatal: ${error instanceof Error ? error.message : String(error)}\n`);
      return 1;
    }
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      options.logger.log("warning", "system", `second ${signal}: exiting without draining`);
      process.exit(130);
    }
    stopping = true;
    options.logger.log("info", "system", `${signal}: draining (up to ${manifest.shutdown.drain_timeout_ms} ms), then stopping`);
    system.send({ type: "STOP" });
  };
  const onSigint = () => stop("SIGINT");
  const onSigterm = () => stop("SIGTERM");
  if (options.signals !== false) {
    process.on("SIGINT", onSigint);
    process.on("SIGTERM", onSigterm);
  }

  const done = new Promise<{ error?: string }>((resolve) => {
    system.subscribe({
      next: (s) => s.status === "done" && resolve((s.output ?? {}) as { error?: string }),
      error: (error) => resolve({ error: error instanceof Error ? error.message : String(error) }),
    });
  });
  // JSON log lines carry the state of the actor they are about.
  options.logger.stateOf = (actor) => {
    const ref = actor === "system" ? system : system.system.get(actor);
    return ref ? stateString(ref.getSnapshot().value) || undefined : undefined;
  };
  system.start();
  options.onStarted?.(system);

  let timer: ReturnType<typeof setInterval> | undefined;
  if (options.status !== "off") {
    const tty = Boolean(out.isTTY);
    const intervalMs = options.statusIntervalMs ?? (tty ? 1000 : 10_000);
    const rates = new Map<string, number>();
    timer = setInterval(() => {
      const lines = flatten(describeActor("system", system), 0, [], rates, intervalMs / 1000);
      out.write(tty ? `\x1b[H\x1b[2J${new Date().toISOString()}  (Ctrl-C stops)\n${lines.join("\n")}\n` : lines.map((l) => `status ${l.trim()}`).join("\n") + "\n");
    }, intervalMs);
  }

  const result = await done;
  await http?.close();
  inspector?.stop();
  if (timer) clearInterval(timer);
  if (options.signals !== false) {
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigterm);
  }
  for (const line of summaryLines(refsOf())) out.write(line + "\n");
  if (result.error) {
    out.write(`fatal: ${result.error}\n`);
    return 1;
  }
  return 0;
}
