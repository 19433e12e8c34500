// The HTTP endpoint (manifest `http.listen`, or `--http ADDR`):
//   GET /live     200 {"status":"OK"} while the process serves
//   GET /ready    200 while every bridge and verifier is connected on both sides, else 503 naming who is not (lib/readiness.ts)
//   GET /metrics  Prometheus text, computed at scrape time from the actor tree (lib/metrics.ts)
//   GET /actors   the whole actor tree as JSON: id, machine, state, since, counters
//   GET /machines every running machine's diagram model (lib/diagram.ts)
//   GET /events   server-sent events: the tree and readiness, every pushIntervalMs
//   GET /         the status page (actors/status-page.ts)
// Everything it returns passes through lib/redact.ts: no credential leaves.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
// node:timers, so the push timer can be unref'd under Deno as well.
import { clearInterval, setInterval } from "node:timers";
import type { AnyActorRef, AnyStateMachine } from "xstate";
import { describeActor, type ActorInfo } from "../lib/status.ts";
import { ActorWatch, walkActors, type Inspectable } from "../lib/actor-watch.ts";
import { createMetrics, type Metrics } from "../lib/metrics.ts";
import { readiness, type Readiness } from "../lib/readiness.ts";
import { describeMachine, type MachineModel } from "../lib/diagram.ts";
import { redactText, redactUrl } from "../lib/redact.ts";
import type { Logger } from "../lib/log.ts";
import { STATUS_PAGE_HTML } from "./status-page.ts";

export interface HttpServerOptions {
  /** `host:port` (`[::1]:9100` for IPv6); port 0 picks a free one (see the returned url). */
  listen: string;
  /** The root actor (machines/system.ts), started or not. */
  system: AnyActorRef;
  logger?: Logger;
  /** How often /events pushes the tree. Default 1000 ms. */
  pushIntervalMs?: number;
  /** Node's process_* / nodejs_* metrics too. Default true. */
  processMetrics?: boolean;
  now?: () => number;
}

export interface HttpServer {
  /** `http://host:port`, with the port actually bound. */
  url: string;
  metrics: Metrics;
  close(): Promise<void>;
}

/** An actor of /actors. */
export interface ActorJson {
  id: string;
  machine: string;
  state: string;
  status: string;
  /** When the actor entered its current state (ISO 8601), as far as the server has seen. */
  since?: string;
  counters: Record<string, number>;
  /** What the actor talks to: a broker URL (password redacted), ZeroMQ endpoints. */
  detail?: Record<string, string | string[]>;
  last_error?: string;
  children: ActorJson[];
}

/** `host:port` → the pieces `listen()` takes; throws naming the fix. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new Error(`http.listen: ${JSON.stringify(listen)} is not host:port; write e.g. "127.0.0.1:9100" (or "[::1]:9100")`);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

/** JSON with every string passed through redactText, so no URL credential can slip out. */
function safeJson(value: unknown, indent = 2): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "string" ? redactText(v) : v), indent);
}

function detailOf(snapshot: Inspectable): ActorJson["detail"] {
  const ctx = snapshot.context ?? {};
  if (typeof ctx.url === "string") return { url: redactUrl(ctx.url) };
  const spec = ctx.spec as { endpoints?: readonly string[]; endpoint?: string; mode?: string } | undefined;
  if (spec?.endpoints) return { mode: "sub", endpoints: [...spec.endpoints] };
  if (spec?.endpoint) return { mode: "pub", endpoint: spec.endpoint };
  return undefined;
}

/** The tree of /actors: lib/status.ts's description, with since, detail and last error. */
export function actorTree(system: AnyActorRef, watch?: ActorWatch): ActorJson {
  const nodes = watch ? watch.refresh() : walkActors(system);
  const byPath = new Map(nodes.map((n) => [n.path, n]));
  const convert = (info: ActorInfo, path: string): ActorJson => {
    const node = byPath.get(path);
    const snapshot = node?.ref.getSnapshot() as Inspectable | undefined;
    const since = watch?.since(path);
    const lastError = snapshot?.context?.lastError;
    return {
      id: info.id,
      machine: info.machine,
      state: info.state,
      status: info.status,
      since: since === undefined ? undefined : new Date(since).toISOString(),
      counters: info.counters,
      detail: snapshot ? detailOf(snapshot) : undefined,
      last_error: typeof lastError === "string" ? lastError : undefined,
      children: info.children.map((child) => convert(child, `${path}/${child.id}`)),
    };
  };
  return convert(describeActor(watch?.rootId ?? "system", system), watch?.rootId ?? "system");
}

/** Diagram models of the machines running in the tree (each once), parents first. */
export function runningMachines(system: AnyActorRef): MachineModel[] {
  const seen = new Map<string, MachineModel>();
  for (const node of walkActors(system)) {
    const logic = (node.ref as unknown as { logic?: AnyStateMachine }).logic;
    if (logic && "root" in logic && logic.root && !seen.has(logic.id)) seen.set(logic.id, describeMachine(logic));
  }
  return [...seen.values()];
}

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean) {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store", "x-content-type-options": "nosniff" });
  res.end(head ? undefined : body);
}

const JSON_TYPE = "application/json; charset=utf-8";

/** Starts the HTTP endpoint; resolves once it listens, rejects with the fix when it cannot. */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { host, port } = parseListen(options.listen);
  const { system, logger } = options;
  const now = options.now ?? Date.now;
  const metrics = createMetrics(system, { processMetrics: options.processMetrics });
  const watch = new ActorWatch(system, now);
  const streams = new Set<ServerResponse>();

  const readyBody = (r: Readiness) =>
    safeJson({ status: r.ready ? "ready" : "not ready", not_ready: r.actors.filter((a) => !a.ready), actors: r.actors });
  const snapshotEvent = () => safeJson({ time: new Date(now()).toISOString(), actors: actorTree(system, watch), ready: readiness(system) }, 0);

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? "GET";
    const head = method === "HEAD";
    if (method !== "GET" && !head) {
      res.setHeader("allow", "GET, HEAD");
      return send(res, 405, JSON_TYPE, safeJson({ error: `${method} is not allowed; use GET` }), false);
    }
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    switch (path) {
      case "/live":
        return send(res, 200, JSON_TYPE, JSON.stringify({ status: "OK" }), head);
      case "/ready": {
        const r = readiness(system);
        return send(res, r.ready ? 200 : 503, JSON_TYPE, readyBody(r), head);
      }
      case "/metrics":
        // Label values are already redacted; this catches anything else.
        return send(res, 200, metrics.contentType, redactText(await metrics.render()), head);
      case "/actors":
        return send(res, 200, JSON_TYPE, safeJson(actorTree(system, watch)), head);
      case "/machines":
        return send(res, 200, JSON_TYPE, safeJson(runningMachines(system)), head);
      case "/":
      case "/index.html":
        return send(res, 200, "text/html; charset=utf-8", STATUS_PAGE_HTML, head);
      case "/events": {
        res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", connection: "keep-alive", "x-accel-buffering": "no" });
        if (head) return res.end();
        res.write(`retry: 2000\n\ndata: ${snapshotEvent()}\n\n`);
        streams.add(res);
        req.on("close", () => streams.delete(res));
        return;
      }
      default:
        return send(res, 404, JSON_TYPE, safeJson({ error: `no such endpoint ${path}; try /live, /ready, /metrics, /actors or /` }), head);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const message = redactText(error instanceof Error ? error.message : String(error));
      logger?.log("error", "http", `${req.method} ${req.url}: ${message}`);
      if (!res.headersSent) send(res, 500, JSON_TYPE, safeJson({ error: message }), false);
      else res.end();
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const why = error.code === "EADDRINUSE" ? "the address is in use" : error.code === "EADDRNOTAVAIL" ? "no interface has that address" : error.code === "EACCES" ? "permission denied (ports below 1024 need privileges)" : error.message;
      reject(new Error(`http.listen: cannot listen on ${options.listen}: ${why}; choose another address with --http HOST:PORT or http.listen in the manifest`));
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === "IPv6" || address.family === (6 as unknown) ? `[${address.address}]` : address.address}:${address.port}`;
  logger?.log("info", "http", `serving /live /ready /metrics /actors and the status page on ${url}`);

  const timer = setInterval(() => {
    if (streams.size === 0) return;
    const frame = `data: ${snapshotEvent()}\n\n`;
    for (const res of streams) res.write(frame);
  }, options.pushIntervalMs ?? 1000);
  timer.unref();

  let closing: Promise<void> | undefined;
  return {
    url,
    metrics,
    close() {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(timer);
        watch.close();
        for (const res of streams) res.end();
        streams.clear();
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      return closing;
    },
  };
}
