// Diagrams generated from the machine definitions: what they read from the
// StateNode tree, and docs/machines kept in step with the machines.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createMachine, fromPromise, setup } from "xstate";
import { describeMachine, MACHINES, renderDiagrams, toMermaid } from "../lib/diagram.ts";
import { diagramCommand, staleDiagrams, writeDiagrams } from "../scripts/diagram.ts";

const DOCS = fileURLToPath(new URL("../docs/machines/", import.meta.url));

/** A machine with every construct the generator reads. */
const sample = setup({
  actors: { fetcher: fromPromise(async () => 1) },
  guards: { retriesLeft: () => true },
  delays: { backoff: 100 },
}).createMachine({
  id: "sample",
  initial: "idle",
  on: { STOP: ".stopped" },
  states: {
    idle: { on: { GO: "busy", PING: {} } },
    busy: {
      invoke: { src: "fetcher", onDone: "done", onError: [{ guard: "retriesLeft", target: "waiting" }, { target: "failed" }] },
    },
    waiting: {
      initial: "short",
      states: {
        short: { after: { 50: { target: "short", reenter: true } }, always: { guard: ({ context }) => context === undefined, target: "#sample.failed" } },
      },
      after: { backoff: "busy" },
    },
    both: {
      type: "parallel",
      states: { left: { initial: "a", states: { a: {} } }, right: { initial: "b", states: { b: {} } } },
    },
    done: { type: "final" },
    failed: { type: "final" },
    stopped: { type: "final" },
  },
});

describe("machine diagrams", () => {
  it("read states, nesting, on, after, always and invoke onDone/onError from the definition", () => {
    const model = describeMachine(sample);
    assert.equal(model.id, "sample");
    assert.equal(model.root.initial, "idle");
    assert.deepEqual(model.root.states.map((s) => `${s.path}:${s.type}`), ["idle:atomic", "busy:atomic", "waiting:compound", "both:parallel", "done:final", "failed:final", "stopped:final"]);
    const busy = model.root.states[1]!;
    assert.deepEqual(busy.invokes, ["fetcher"]);
    assert.deepEqual(busy.transitions.map((t) => [t.kind, t.label, t.targets, t.guard]), [
      ["done", "done: fetcher", ["done"], undefined],
      ["error", "error: fetcher", ["waiting"], "retriesLeft"],
      ["error", "error: fetcher", ["failed"], undefined],
    ]);
    const short = model.root.states[2]!.states[0]!;
    assert.equal(short.path, "waiting.short");
    assert.deepEqual(short.transitions.map((t) => [t.kind, t.label, t.targets, t.guard, t.reenter]), [
      ["after", "after 50ms", ["waiting.short"], undefined, true],
      ["always", "always", ["failed"], "guard", false],
    ]);
    assert.deepEqual(model.root.states[2]!.transitions.map((t) => t.label), ["after backoff"]);
    assert.deepEqual(model.root.states[0]!.transitions.map((t) => [t.label, t.targets]), [["GO", ["busy"]], ["PING", []]]);
  });

  it("writes Mermaid stateDiagram-v2, drawing the root's transitions from each state that takes them", () => {
    assert.equal(
      toMermaid(sample, "test"),
      [
        "%% sample (test): generated from the machine definition by `fedmsg-migration-tools diagram`; do not edit.",
        "stateDiagram-v2",
        "  [*] --> sample",
        '  state "sample" as sample {',
        "    [*] --> idle",
        '    state "idle" as idle',
        '    state "busy" as busy',
        '    state "waiting" as waiting {',
        "      [*] --> waiting__short",
        '      state "short" as waiting__short',
        "      waiting__short --> waiting__short: after 50ms",
        "      waiting__short --> failed: always [guard]",
        "    }",
        '    state "both" as both {',
        '      state "left" as both__left {',
        "        [*] --> both__left__a",
        '        state "a" as both__left__a',
        "      }",
        "      --",
        '      state "right" as both__right {',
        "        [*] --> both__right__b",
        '        state "b" as both__right__b',
        "      }",
        "    }",
        '    state "done" as done',
        "    done --> [*]",
        '    state "failed" as failed',
        "    failed --> [*]",
        '    state "stopped" as stopped',
        "    stopped --> [*]",
        "    idle: PING (no state change)",
        "    idle --> busy: GO",
        "    busy: invoke fetcher",
        "    busy --> done: done: fetcher",
        "    busy --> waiting: error: fetcher [retriesLeft]",
        "    busy --> failed: error: fetcher",
        "    waiting --> busy: after backoff",
        "    idle --> stopped: STOP",
        "    busy --> stopped: STOP",
        "    waiting --> stopped: STOP",
        "    both --> stopped: STOP",
        "  }",
        "",
      ].join("\n"),
    );
  });

  it("covers every machine of machines/", () => {
    assert.deepEqual(MACHINES.map((m) => m.machine.id).sort(), ["amqpChannel", "amqpConnection", "amqpToZmq", "system", "verifier", "verifyService", "zmqSocket", "zmqToAmqp"]);
    const zmqToAmqp = renderDiagrams().get("zmqToAmqp.mmd")!;
    assert.match(zmqToAmqp, /^ {6}draining__waiting --> stopped: always \[drained\]$/m);
    const connection = renderDiagrams().get("amqpConnection.mmd")!;
    assert.match(connection, /^ {4}connecting --> connected: done: connect$/m);
    assert.match(connection, /^ {4}connecting --> failed: error: connect \[outOfAttempts\]$/m);
    assert.match(connection, /^ {4}reconnecting --> connecting: after backoff$/m);
  });

  it("docs/machines is up to date (regenerate with `npx tsx scripts/cli.ts diagram`)", async () => {
    const stale = await staleDiagrams(DOCS);
    assert.deepEqual(stale, [], `stale diagrams: ${stale.join(", ")}; run \`npx tsx scripts/cli.ts diagram --out docs/machines\` and commit the result`);
  });

  it("diagram --check fails on a missing, edited or left-over file; diagram rewrites them", async () => {
    const dir = await mkdtemp(join(tmpdir(), "diagrams-"));
    const out: string[] = [];
    const sink = { write: (s: string) => void out.push(s) } as unknown as NodeJS.WritableStream;
    try {
      assert.equal(await diagramCommand({ out: dir, check: true, stdout: sink, stderr: sink }), 1, "an empty directory is stale");
      const written = await writeDiagrams(dir);
      assert.equal(written.length, MACHINES.length + 1, "a .mmd per machine and the README showing them");
      assert.deepEqual(await staleDiagrams(dir), []);
      assert.equal(await diagramCommand({ out: dir, check: true, stdout: sink, stderr: sink }), 0);

      await writeFile(join(dir, "zmqToAmqp.mmd"), "stateDiagram-v2\n  [*] --> handWritten\n");
      await writeFile(join(dir, "gone.mmd"), "stateDiagram-v2\n");
      assert.deepEqual((await staleDiagrams(dir)).sort(), [join(dir, "gone.mmd"), join(dir, "zmqToAmqp.mmd")]);
      assert.equal(await diagramCommand({ out: dir, check: true, stdout: sink, stderr: sink }), 1);
      assert.match(out.join(""), /stale or missing: .*zmqToAmqp\.mmd.*; regenerate with `npx tsx scripts\/cli\.ts diagram --out /);

      assert.equal(await diagramCommand({ out: dir, stdout: sink, stderr: sink }), 0);
      assert.deepEqual(await staleDiagrams(dir), []);
      assert.equal(await readFile(join(dir, "zmqToAmqp.mmd"), "utf8"), renderDiagrams().get("zmqToAmqp.mmd"));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("works on any machine, not only those of machines/", () => {
    const toggle = createMachine({ id: "toggle", initial: "off", states: { off: { on: { FLIP: "on" } }, on: { on: { FLIP: "off" } } } });
    assert.match(toMermaid(toggle), /^ {4}off --> on: FLIP\n {4}on --> off: FLIP\n {2}\}\n$/m);
  });
});
