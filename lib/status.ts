// Reads the live actor tree into plain data: for the terminal status, the
// summary lines, and (later) /actors and /metrics. Never copies per message.
import type { AnyActorRef } from "xstate";
import { BridgeStats } from "./stats.ts";
import { redactText } from "./redact.ts";
import { formatSummary, type VerifierSummary } from "./verifier-tracker.ts";

export interface ActorInfo {
  id: string;
  machine: string;
  state: string;
  status: string;
  counters: Record<string, number>;
  children: ActorInfo[];
}

/** `{ open: "ready" }` → `open.ready`. */
export function stateString(value: unknown): string {
  if (typeof value === "string") return value;
  if (value && typeof value === "object") {
    return Object.entries(value)
      .map(([k, v]) => (v && (typeof v === "string" || typeof v === "object") && Object.keys(v).length ? `${k}.${stateString(v)}` : k))
      .join(",");
  }
  return "";
}

interface Inspectable {
  value?: unknown;
  status: string;
  context?: Record<string, unknown>;
  children?: Record<string, AnyActorRef | undefined>;
}

function verifierSummaryOf(ref: AnyActorRef | undefined): VerifierSummary | undefined {
  const core = ref?.getSnapshot() as Inspectable | undefined;
  const tracker = core?.context?.tracker as { summary(): VerifierSummary } | undefined;
  return tracker?.summary();
}

function countersOf(snapshot: Inspectable): Record<string, number> {
  const ctx = snapshot.context ?? {};
  const counters: Record<string, number> = {};
  if (ctx.stats instanceof BridgeStats) {
    const s = ctx.stats;
    Object.assign(counters, { received: s.received, forwarded: s.forwarded, dropped: s.droppedTotal, duplicates: s.duplicates, returned: s.returned, refused: s.refused });
  }
  const buffer = ctx.buffer as { size?: number; inflightCount?: number } | undefined;
  if (buffer?.size !== undefined) Object.assign(counters, { buffered: buffer.size, inflight: buffer.inflightCount ?? 0 });
  if (typeof ctx.reconnects === "number") counters.reconnects = ctx.reconnects;
  if (typeof ctx.closes === "number") counters.closes = ctx.closes;
  const summary = verifierSummaryOf(snapshot.children?.core);
  if (summary) {
    Object.assign(counters, {
      matched: summary.matched,
      missing_amqp: summary.missingAmqp,
      missing_zmq: summary.missingZmq,
      mismatched: summary.mismatched,
      pending: summary.pending,
    });
  }
  return counters;
}

export function describeActor(id: string, ref: AnyActorRef): ActorInfo {
  const snapshot = ref.getSnapshot() as Inspectable;
  const children = Object.entries(snapshot.children ?? {})
    // Named actors only (`zmq:…`, `amqp:…:n`); invoked helpers are internals.
    .filter((entry): entry is [string, AnyActorRef] => entry[1] !== undefined && entry[0].includes(":"))
    .map(([childId, child]) => describeActor(childId, child));
  const logic = (ref as unknown as { logic?: { id?: string } }).logic;
  return { id, machine: logic?.id ?? "callback", state: stateString(snapshot.value) || snapshot.status, status: snapshot.status, counters: countersOf(snapshot), children };
}

/** The final line of each bridge and verifier, as operators grep for it. */
export function summaryLines(refs: Record<string, AnyActorRef>): string[] {
  const lines: string[] = [];
  for (const [id, ref] of Object.entries(refs)) {
    const snapshot = ref.getSnapshot() as Inspectable;
    if (snapshot.context?.stats instanceof BridgeStats) lines.push(`summary ${id} ${snapshot.context.stats.summary()}`);
    const verifier = verifierSummaryOf(snapshot.children?.core) ?? (snapshot.context?.finalSummary as VerifierSummary | undefined);
    if (id.startsWith("verify:") && verifier) lines.push(formatSummary(id.slice("verify:".length), verifier));
  }
  return lines;
}

/**
 * What an outside observer (the Stately inspector) may see of a context or an
 * event: primitives only, strings with credentials redacted; sockets, buffers,
 * connections and functions left out.
 */
export function publicView(value: unknown): Record<string, unknown> {
  const view: Record<string, unknown> = {};
  if (!value || typeof value !== "object") return view;
  for (const [key, v] of Object.entries(value)) {
    if (typeof v === "string") view[key] = redactText(v);
    else if (typeof v === "number" || typeof v === "boolean" || v === null) view[key] = v;
    else if (v instanceof BridgeStats) view[key] = { received: v.received, forwarded: v.forwarded, dropped: v.droppedTotal, duplicates: v.duplicates };
  }
  return view;
}
