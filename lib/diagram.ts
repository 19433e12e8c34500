// Every machine as a diagram, read from its definition (machine.root, the
// StateNode tree): states and nesting, `on`, `after`, `always`, and the
// onDone/onError of what a state invokes. One model feeds both the Mermaid files
// of docs/machines and the status page, so neither is ever drawn by hand.
import type { AnyStateMachine, AnyStateNode } from "xstate";
import { systemMachine } from "../machines/system.ts";
import { amqpConnectionMachine } from "../machines/amqpConnection.ts";
import { amqpChannelMachine } from "../machines/amqpChannel.ts";
import { zmqSocketMachine } from "../machines/zmqSocket.ts";
import { zmqToAmqpMachine } from "../machines/zmqToAmqp.ts";
import { amqpToZmqMachine } from "../machines/amqpToZmq.ts";
import { verifyServiceMachine } from "../machines/verifyService.ts";
import { verifierMachine } from "../machines/verifier.ts";

/** The machines of machines/, each with the file it is defined in. */
export const MACHINES: readonly { file: string; machine: AnyStateMachine }[] = [
  { file: "machines/system.ts", machine: systemMachine },
  { file: "machines/amqpConnection.ts", machine: amqpConnectionMachine },
  { file: "machines/amqpChannel.ts", machine: amqpChannelMachine },
  { file: "machines/zmqSocket.ts", machine: zmqSocketMachine },
  { file: "machines/zmqToAmqp.ts", machine: zmqToAmqpMachine },
  { file: "machines/amqpToZmq.ts", machine: amqpToZmqMachine },
  { file: "machines/verifyService.ts", machine: verifyServiceMachine },
  { file: "machines/verifier.ts", machine: verifierMachine },
];

export type TransitionKind = "event" | "after" | "always" | "done" | "error";

export interface TransitionModel {
  kind: TransitionKind;
  /** What triggers it, as a reader names it: `STOP`, `after 50ms`, `always`, `done: connect`. */
  label: string;
  /** Dotted paths of the targets ("" is the root); empty for a transition that only runs actions. */
  targets: string[];
  guard?: string;
  /** Leaves and re-enters its own state (a timer restarting itself). */
  reenter: boolean;
}

export interface StateModel {
  key: string;
  /** Dotted path from the root, as in the state value (`open.ready`); "" for the root. */
  path: string;
  type: "atomic" | "compound" | "parallel" | "final" | "history";
  /** Path of the initial child, for a compound state. */
  initial?: string;
  /** What the state invokes while it is active (logic names of `setup({ actors })`). */
  invokes: string[];
  transitions: TransitionModel[];
  states: StateModel[];
}

export interface MachineModel {
  id: string;
  root: StateModel;
}

const pathOf = (node: AnyStateNode) => node.path.join(".");

function guardName(guard: unknown): string | undefined {
  if (guard === undefined) return undefined;
  if (typeof guard === "string") return guard;
  if (typeof guard === "function") return guard.name && guard.name !== "guard" ? guard.name : "guard";
  if (guard && typeof guard === "object" && "type" in guard) return String((guard as { type: unknown }).type);
  return "guard";
}

function delayLabel(delay: unknown): string {
  return typeof delay === "number" ? `after ${delay}ms` : `after ${String(delay)}`;
}

/** `xstate.done.actor.<invoke id>` → `done: <src>`; wildcards and foreign ids stay as written. */
function classify(eventType: string, node: AnyStateNode): { kind: TransitionKind; label: string } {
  for (const [prefix, kind] of [["xstate.done.actor.", "done"], ["xstate.error.actor.", "error"]] as const) {
    if (eventType.startsWith(prefix)) {
      const id = eventType.slice(prefix.length);
      const invoked = node.invoke.find((i) => i.id === id);
      if (invoked) return { kind, label: `${kind}: ${typeof invoked.src === "string" ? invoked.src : id}` };
    }
  }
  if (eventType.startsWith("xstate.done.state.")) return { kind: "done", label: "done" };
  return { kind: "event", label: eventType };
}

function describeNode(node: AnyStateNode): StateModel {
  const transitions: TransitionModel[] = [];
  const delayed = new Map(node.after.map((a) => [a.eventType, a]));
  for (const [eventType, definitions] of node.transitions) {
    const after = delayed.get(eventType);
    const { kind, label } = after ? { kind: "after" as const, label: delayLabel(after.delay) } : classify(eventType, node);
    for (const t of definitions) {
      transitions.push({ kind, label, targets: (t.target ?? []).map(pathOf), guard: guardName(t.guard), reenter: Boolean(t.reenter) });
    }
  }
  for (const t of node.always ?? []) {
    transitions.push({ kind: "always", label: "always", targets: (t.target ?? []).map(pathOf), guard: guardName(t.guard), reenter: Boolean(t.reenter) });
  }
  const children = Object.values(node.states) as AnyStateNode[];
  const initial = node.type === "compound" ? node.initial?.target?.[0] : undefined;
  return {
    key: node.key,
    path: pathOf(node),
    type: node.type,
    initial: initial ? pathOf(initial) : undefined,
    invokes: node.invoke.map((i) => (typeof i.src === "string" ? i.src : i.id)),
    transitions,
    states: children.map(describeNode),
  };
}

/** The diagram model of one machine, read from its StateNode tree. */
export function describeMachine(machine: AnyStateMachine): MachineModel {
  return { id: machine.id, root: describeNode(machine.root) };
}

// --- Mermaid ---------------------------------------------------------------

/** A Mermaid state id: unique across the diagram (nested `waiting`s differ). */
function mermaidId(model: MachineModel, path: string): string {
  return path === "" ? model.id : path.split(".").join("__");
}

/** Text after `:` in Mermaid runs to the end of the line; `#` and `;` start entities. */
function mermaidText(text: string): string {
  return text.replace(/#/g, "#35;").replace(/;/g, "#59;");
}

function transitionText(t: TransitionModel): string {
  return mermaidText(t.guard ? `${t.label} [${t.guard}]` : t.label);
}

function mermaidState(model: MachineModel, state: StateModel, depth: number, out: string[]): void {
  const pad = "  ".repeat(depth);
  const id = mermaidId(model, state.path);
  const inner = "  ".repeat(depth + 1);
  if (state.states.length === 0) {
    out.push(`${pad}state "${state.key}" as ${id}`);
  } else {
    out.push(`${pad}state "${state.key}" as ${id} {`);
    if (state.initial !== undefined) out.push(`${inner}[*] --> ${mermaidId(model, state.initial)}`);
    state.states.forEach((child, i) => {
      if (state.type === "parallel" && i > 0) out.push(`${inner}--`);
      mermaidState(model, child, depth + 1, out);
    });
    // Transitions live beside their source, inside the composite that holds it.
    for (const child of state.states) mermaidTransitions(model, child, depth + 1, out);
    if (state.path === "") mermaidTransitions(model, state, depth + 1, out);
    out.push(`${pad}}`);
  }
  if (state.type === "final") out.push(`${pad}${id} --> [*]`);
}

function mermaidTransitions(model: MachineModel, state: StateModel, depth: number, out: string[]): void {
  if (state.path !== "") mermaidInside(model, state, depth, out);
  const pad = "  ".repeat(depth);
  for (const t of state.transitions) {
    for (const target of t.targets) {
      for (const from of edgeSources(state, t, target)) out.push(`${pad}${mermaidId(model, from)} --> ${mermaidId(model, target)}: ${transitionText(t)}`);
    }
  }
}

const within = (path: string, ancestor: string) => ancestor === "" || path.startsWith(ancestor + ".");

/**
 * Where an edge is drawn from. Mermaid cannot draw an edge from a box to what it
 * contains, so a transition into a state's own descendant (the root's `STOP`, or
 * `open`'s `CONNECTION.BLOCKED` → `open.blocked`) leaves from each child that
 * would take it: not the target, not one containing it, not a final state, and
 * not one that handles the event itself.
 */
function edgeSources(state: StateModel, t: TransitionModel, target: string): string[] {
  if (!within(target, state.path)) return [state.path];
  return state.states
    .filter((from) => from.type !== "final" && from.path !== target && !within(target, from.path))
    .filter((from) => !from.transitions.some((own) => own.label === t.label))
    .map((from) => from.path);
}

function mermaidInside(model: MachineModel, state: StateModel, depth: number, out: string[]): void {
  const pad = "  ".repeat(depth);
  const id = mermaidId(model, state.path);
  // What happens inside the state: invokes, and transitions that change no state.
  const inside = [
    ...state.invokes.map((invoked) => `invoke ${mermaidText(invoked)}`),
    ...state.transitions.filter((t) => t.targets.length === 0).map((t) => `${transitionText(t)} (no state change)`),
  ];
  if (inside.length && state.states.length === 0) for (const line of inside) out.push(`${pad}${id}: ${line}`);
  // A composite state takes no description in Mermaid: a note says the same.
  if (inside.length && state.states.length > 0) out.push(`${pad}note right of ${id}`, ...inside.map((line) => `${pad}  ${line}`), `${pad}end note`);
}

/** A Mermaid stateDiagram-v2 of the machine: the root is the outer box. */
export function toMermaid(machine: AnyStateMachine, source?: string): string {
  const model = describeMachine(machine);
  const out = [
    `%% ${model.id}${source ? ` (${source})` : ""}: generated from the machine definition by \`fedmsg-migration-tools diagram\`; do not edit.`,
    "stateDiagram-v2",
    `  [*] --> ${mermaidId(model, "")}`,
  ];
  mermaidState(model, model.root, 1, out);
  mermaidInside(model, model.root, 1, out);
  return out.join("\n") + "\n";
}

/** File name → content: `<id>.mmd` for every machine, and a README.md showing them all (GitHub renders its mermaid blocks). */
export function renderDiagrams(machines = MACHINES): Map<string, string> {
  const files = new Map(machines.map(({ file, machine }) => [`${machine.id}.mmd`, toMermaid(machine, file)]));
  const index = [
    "# State machines",
    "",
    "Generated from the machine definitions by `fedmsg-migration-tools diagram`; do not edit.",
    "A test fails when these files are stale: regenerate them with `npx tsx scripts/cli.ts diagram`.",
    "",
  ];
  for (const { file, machine } of machines) {
    index.push(`## ${machine.id}`, "", `[${file}](../../${file}) · [${machine.id}.mmd](${machine.id}.mmd)`, "", "```mermaid", files.get(`${machine.id}.mmd`)!.trimEnd(), "```", "");
  }
  files.set("README.md", index.join("\n"));
  return files;
}
