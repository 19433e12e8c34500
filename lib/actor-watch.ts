// The live actor tree with, for each named actor, since when it is in its
// current state. XState snapshots carry no timestamps, so each named actor is
// subscribed to: they change state on control-plane events only (the data plane
// bypasses them), so this costs nothing per message.
import type { AnyActorRef, Subscription } from "xstate";
import { stateString } from "./status.ts";

export interface Inspectable {
  value?: unknown;
  status: string;
  context?: Record<string, unknown>;
  children?: Record<string, AnyActorRef | undefined>;
}

export interface ActorNode {
  id: string;
  /** Ids from the root down, joined by "/": unique even when two actors share an id. */
  path: string;
  ref: AnyActorRef;
  parent?: ActorNode;
  depth: number;
}

/** The logic id of an actor: the machine id (`zmqToAmqp`), or "callback"/"promise". */
export function machineOf(ref: AnyActorRef): string {
  const logic = (ref as unknown as { logic?: { id?: string } }).logic;
  return logic?.id ?? "callback";
}

export function stateOf(ref: AnyActorRef): string {
  const snapshot = ref.getSnapshot() as Inspectable;
  return stateString(snapshot.value) || snapshot.status;
}

/** Named children only (`zmq:…`, `amqp:…:n`), as lib/status.ts describes them; invoked helpers are internals. */
export function namedChildren(ref: AnyActorRef): [string, AnyActorRef][] {
  const snapshot = ref.getSnapshot() as Inspectable;
  return Object.entries(snapshot.children ?? {}).filter((entry): entry is [string, AnyActorRef] => entry[1] !== undefined && entry[0].includes(":"));
}

/** Every named actor below (and including) `root`, parents before children. */
export function walkActors(root: AnyActorRef, rootId = "system"): ActorNode[] {
  const out: ActorNode[] = [];
  const visit = (id: string, ref: AnyActorRef, parent: ActorNode | undefined) => {
    const node: ActorNode = { id, path: parent ? `${parent.path}/${id}` : id, ref, parent, depth: parent ? parent.depth + 1 : 0 };
    out.push(node);
    for (const [childId, child] of namedChildren(ref)) visit(childId, child, node);
  };
  visit(rootId, root, undefined);
  return out;
}

interface Watched {
  ref: AnyActorRef;
  state: string;
  since: number;
  subscription: Subscription;
}

export class ActorWatch {
  private readonly watched = new Map<string, Watched>();
  private refreshQueued = false;
  private closed = false;

  constructor(
    readonly root: AnyActorRef,
    private readonly now: () => number = Date.now,
    readonly rootId = "system",
  ) {
    this.refresh();
  }

  /** Walks the tree: subscribes to new actors, forgets those gone. Returns the walk. */
  refresh(): ActorNode[] {
    const nodes = walkActors(this.root, this.rootId);
    if (this.closed) return nodes;
    const seen = new Set<string>();
    for (const node of nodes) {
      seen.add(node.path);
      const known = this.watched.get(node.path);
      if (known && known.ref === node.ref) {
        this.note(known);
        continue;
      }
      known?.subscription.unsubscribe();
      const entry: Watched = { ref: node.ref, state: stateOf(node.ref), since: this.now(), subscription: { unsubscribe() {} } };
      this.watched.set(node.path, entry);
      entry.subscription = node.ref.subscribe({
        next: () => {
          this.note(entry);
          // A state change may have spawned or stopped children: look again, once.
          this.queueRefresh();
        },
        error: () => this.queueRefresh(),
        complete: () => this.queueRefresh(),
      });
    }
    for (const [path, entry] of this.watched) {
      if (!seen.has(path)) {
        entry.subscription.unsubscribe();
        this.watched.delete(path);
      }
    }
    return nodes;
  }

  /** Since when (ms since the epoch) the actor at `path` is in its current state. */
  since(path: string): number | undefined {
    const entry = this.watched.get(path);
    if (!entry) return undefined;
    this.note(entry);
    return entry.since;
  }

  close(): void {
    this.closed = true;
    for (const entry of this.watched.values()) entry.subscription.unsubscribe();
    this.watched.clear();
  }

  private note(entry: Watched): void {
    const state = stateOf(entry.ref);
    if (state !== entry.state) {
      entry.state = state;
      entry.since = this.now();
    }
  }

  private queueRefresh(): void {
    if (this.refreshQueued || this.closed) return;
    this.refreshQueued = true;
    queueMicrotask(() => {
      this.refreshQueued = false;
      if (!this.closed) this.refresh();
    });
  }
}
