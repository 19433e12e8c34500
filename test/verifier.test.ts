// verify_missing: the tracker (lib/verifier-tracker.ts) and the machine
// (machines/verifier.ts), driven by XState's SimulatedClock.
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { createActor, SimulatedClock } from "xstate";
import {
  formatSummary,
  pythonUtcIsoformat,
  sameJsonContent,
  VerifierTracker,
  type MismatchFinding,
  type MissingFinding,
  type VerifierFinding,
} from "../lib/verifier-tracker.ts";
import { verifierMachine, type VerifierInput, type VerifierLogLevel } from "../machines/verifier.ts";

const START = Date.UTC(2026, 10, 28, 5, 56, 52, 123); // 2026-11-28T05:56:52.123Z
const TOPIC = "org.fedoraproject.prod.bodhi.update.comment";

/** A fedmsg-like uuid, deterministic per n. */
function uuid(n: number): string {
  const h = n.toString(16).padStart(12, "0");
  return `0f1e2d3c-4b5a-4697-8877-${h}`;
}

function body(n: number): Record<string, unknown> {
  return {
    comment: { text: `comment ${n}`, author: "alice", karma: 1, id: n },
    agent: "alice",
    update: { alias: `FEDORA-2026-${n}`, builds: [{ nvr: `pkg-1.${n}-1.fc43` }], status: "testing" },
  };
}

function harness(input: Partial<VerifierInput> = {}) {
  const clock = new SimulatedClock();
  clock.set(START);
  const lines: { level: VerifierLogLevel; line: string }[] = [];
  const findings: VerifierFinding[] = [];
  const actor = createActor(verifierMachine, {
    clock,
    input: {
      name: "test",
      now: () => clock.now(),
      log: (level, line) => lines.push({ level, line }),
      report: (f) => findings.push(f),
      ...input,
    },
  });
  actor.start();
  const zmq = (id: string, msg: unknown, topic = TOPIC) => actor.send({ type: "ZMQ.MESSAGE", id, topic, msg });
  const amqp = (id: string, b: unknown, topic = TOPIC) => actor.send({ type: "AMQP.MESSAGE", id, topic, body: b });
  /** Advances in small steps so each periodic timer fires at its own time. */
  const advance = (ms: number, step = 100) => {
    for (let t = 0; t < ms; t += step) clock.increment(Math.min(step, ms - t));
  };
  const warnings = () => lines.filter((l) => l.level === "warning").map((l) => l.line);
  const summaries = () => lines.filter((l) => l.level === "info" && l.line.startsWith("summary ")).map((l) => l.line);
  const tracker = () => actor.getSnapshot().context.tracker;
  return { clock, actor, lines, findings, zmq, amqp, advance, warnings, summaries, tracker };
}

describe("verifier: Python tool behaviour", () => {
  it("matches pairs and clears them at the next match interval", () => {
    const h = harness();
    for (let n = 0; n < 3; n++) {
      h.zmq(`2026-${uuid(n)}`, body(n));
      h.amqp(`2026-${uuid(n)}`, body(n));
    }
    assert.equal(h.tracker().size, 3, "pairs wait for the match interval");
    h.advance(1_000);
    assert.equal(h.tracker().size, 0);
    assert.equal(h.tracker().summary().matched, 3);
    h.advance(80_000);
    assert.deepEqual(h.warnings(), []);
    assert.deepEqual(h.findings, []);
    assert.ok(h.actor.getSnapshot().matches({ collecting: { matching: "waiting", checking: "waiting" } }));
  });

  it("reports a message only received in ZeroMQ after the window, at the next check, in the Python wording", () => {
    const h = harness();
    const id = `2026-${uuid(1)}`;
    h.zmq(id, body(1));
    h.advance(60_000);
    assert.deepEqual(h.warnings(), [], "not older than the window yet (strictly older, as in Python)");
    h.advance(10_000);
    assert.deepEqual(h.warnings(), [
      `Message ${uuid(1)} was only received in ZeroMQ (at 2026-11-28T05:56:52.123000, with topic ${TOPIC})`,
    ]);
    assert.equal(h.findings.length, 1);
    const f = h.findings[0] as MissingFinding;
    assert.deepEqual(f, {
      kind: "missing",
      side: "amqp",
      seenOn: "zmq",
      id: uuid(1),
      rawId: id,
      topic: TOPIC,
      at: "2026-11-28T05:56:52.123Z",
    });
    const s = h.tracker().summary();
    assert.equal(s.missingAmqp, 1);
    assert.equal(s.missingZmq, 0);
    assert.equal(s.pending, 0);
    h.advance(60_000);
    assert.equal(h.warnings().length, 1, "reported once");
  });

  it("reports a message only received in AMQP likewise", () => {
    const h = harness();
    h.advance(2_500);
    h.amqp(uuid(2), body(2), "org.fedoraproject.prod.copr.build.end");
    h.advance(70_000);
    assert.deepEqual(h.warnings(), [
      `Message ${uuid(2)} was only received in AMQP (at 2026-11-28T05:56:54.623000, with topic org.fedoraproject.prod.copr.build.end)`,
    ]);
    const f = h.findings[0] as MissingFinding;
    assert.equal(f.side, "zmq");
    assert.equal(f.seenOn, "amqp");
    assert.equal(h.tracker().summary().missingZmq, 1);
  });

  it("words arrival times as Python's naive UTC isoformat()", () => {
    assert.equal(pythonUtcIsoformat(START), "2026-11-28T05:56:52.123000");
    assert.equal(pythonUtcIsoformat(Date.UTC(2026, 0, 2, 3, 4, 5, 7)), "2026-01-02T03:04:05.007000");
    assert.equal(pythonUtcIsoformat(Date.UTC(2026, 0, 2, 3, 4, 5, 0) + 0.25), "2026-01-02T03:04:05.000250");
    // isoformat() leaves the fraction out when the microseconds are 0.
    assert.equal(pythonUtcIsoformat(Date.UTC(2026, 0, 2, 3, 4, 5, 0)), "2026-01-02T03:04:05");
  });

  it("strips the year prefix on either side", () => {
    const h = harness();
    h.zmq(`2026-${uuid(1)}`, body(1));
    h.amqp(uuid(1), body(1));
    h.zmq(uuid(2), body(2));
    h.amqp(`2025-${uuid(2)}`, body(2));
    h.zmq(`2026-${uuid(3)}`, body(3));
    h.amqp(`2026-${uuid(3)}`, body(3));
    h.advance(80_000);
    assert.deepEqual(h.warnings(), []);
    assert.equal(h.tracker().summary().matched, 3);
  });
});

describe("verifier: content", () => {
  it("reports a body mismatch with the keys that differ; key order is irrelevant", () => {
    const h = harness();
    const id = `2026-${uuid(7)}`;
    h.zmq(id, { a: 1, b: { x: 1, y: [1, { p: 2, q: 3 }] }, c: "same", e: null });
    h.amqp(id, { e: null, c: "same", b: { y: [1, { q: 3, p: 2 }], x: 1 }, a: 2, d: true });
    h.zmq(`2026-${uuid(8)}`, { a: 1, b: { x: 1, y: 2 } });
    h.amqp(`2026-${uuid(8)}`, { b: { y: 2, x: 1 }, a: 1 });
    h.advance(1_000);
    assert.equal(h.warnings().length, 1);
    const line = h.warnings()[0];
    assert.match(line, /mismatch/);
    assert.ok(line.includes(uuid(7)));
    assert.ok(line.includes("a, d"), line);
    const f = h.findings[0] as MismatchFinding;
    assert.equal(f.kind, "mismatch");
    assert.equal(f.id, uuid(7));
    assert.equal(f.rawId, id);
    assert.deepEqual(f.keys, ["a", "d"]);
    assert.equal(f.topics, undefined);
    const s = h.tracker().summary();
    assert.equal(s.matched, 2);
    assert.equal(s.mismatched, 1);
    h.advance(80_000);
    assert.equal(h.warnings().length, 1, "a mismatched pair is not also missing");
  });

  it("reports a topic mismatch", () => {
    const h = harness();
    h.zmq(uuid(1), body(1), TOPIC);
    h.amqp(uuid(1), body(1), "org.fedoraproject.prod.bodhi.update.edit");
    h.advance(1_000);
    const f = h.findings[0] as MismatchFinding;
    assert.deepEqual(f.keys, []);
    assert.deepEqual(f.topics, { zmq: TOPIC, amqp: "org.fedoraproject.prod.bodhi.update.edit" });
    assert.match(h.warnings()[0], new RegExp(`^Message ${uuid(1)} mismatch .*topic differs: ZeroMQ ${TOPIC}, AMQP org\\.fedoraproject\\.prod\\.bodhi\\.update\\.edit$`));
  });

  it("says (body) when a body is not a JSON object", () => {
    const h = harness();
    h.zmq(uuid(1), { a: 1 });
    h.amqp(uuid(1), [1, 2]);
    h.zmq(uuid(2), "text");
    h.amqp(uuid(2), "text");
    h.zmq(uuid(3), {});
    h.amqp(uuid(3), { a: 1 });
    h.amqp(uuid(4), {});
    h.zmq(uuid(4), {});
    h.amqp(uuid(5), [1, { b: 2, c: 3 }]);
    h.zmq(uuid(5), [1, { c: 3, b: 2 }]);
    h.amqp(uuid(6), null);
    h.zmq(uuid(6), null);
    h.advance(1_000);
    assert.equal(h.tracker().summary().matched, 6);
    assert.deepEqual(
      h.findings.map((f) => [f.id, (f as MismatchFinding).keys]),
      [
        [uuid(1), ["(body)"]],
        [uuid(3), ["a"]],
      ],
    );
  });

  it("compares JSON values, not their spelling", () => {
    assert.ok(sameJsonContent({ a: [1, "x", null, true], b: { c: 1, d: 2 } }, { b: { d: 2, c: 1 }, a: [1, "x", null, true] }));
    assert.ok(!sameJsonContent({ a: [1, 2] }, { a: [2, 1] }), "array order matters");
    assert.ok(!sameJsonContent({ a: "1" }, { a: 1 }));
    assert.ok(!sameJsonContent({ a: ["b", "c"] }, { a: ["bc"] }));
    assert.ok(!sameJsonContent({ a: "" }, { a: null }));
    assert.ok(!sameJsonContent({}, []));
    assert.ok(sameJsonContent({ x: 1.5e300 }, JSON.parse('{"x":1.5E+300}')));
  });
});

describe("verifier: duplicates, late copies, bounds", () => {
  it("counts duplicates per side", () => {
    const h = harness();
    h.zmq(uuid(1), body(1));
    h.zmq(`2026-${uuid(1)}`, body(1));
    h.amqp(uuid(1), body(1));
    h.amqp(uuid(1), body(1));
    h.amqp(uuid(1), body(1));
    h.zmq(uuid(2), body(2));
    h.zmq(uuid(2), body(2));
    h.advance(80_000);
    const s = h.tracker().summary();
    assert.equal(s.duplicatesZmq, 2);
    assert.equal(s.duplicatesAmqp, 2);
    assert.equal(s.matched, 1);
    assert.equal(s.missingAmqp, 1, "uuid(2) only on ZeroMQ, reported once");
    assert.equal(h.warnings().length, 1);
  });

  it("counts a late duplicate after its match as a duplicate, not missing", () => {
    const h = harness();
    h.zmq(uuid(1), body(1));
    h.amqp(uuid(1), body(1));
    h.advance(5_000);
    h.zmq(uuid(1), body(1));
    h.advance(65_000);
    h.amqp(uuid(1), body(1));
    h.advance(80_000);
    assert.deepEqual(h.warnings(), []);
    const s = h.tracker().summary();
    assert.equal(s.matched, 1);
    assert.equal(s.duplicatesZmq, 1);
    assert.equal(s.duplicatesAmqp, 1);
    assert.equal(s.pending, 0);
  });

  it("counts the other copy arriving after a missing report as late, not as missing on the other side", () => {
    const h = harness();
    h.zmq(uuid(1), body(1));
    h.advance(70_000);
    assert.equal(h.warnings().length, 1);
    h.amqp(uuid(1), body(1));
    h.zmq(uuid(1), body(1));
    h.advance(80_000);
    assert.equal(h.warnings().length, 1);
    const s = h.tracker().summary();
    assert.equal(s.late, 1);
    assert.equal(s.duplicatesZmq, 1);
    assert.equal(s.missingZmq, 0);
  });

  it("caps tracked entries at max-pending: evicts the oldest, counts overflow", () => {
    const h = harness({ maxPending: 3 });
    for (const n of [1, 2, 3, 4, 5]) h.zmq(uuid(n), body(n));
    assert.equal(h.tracker().size, 3);
    assert.equal(h.tracker().summary().overflow, 2);
    // The evicted message's other copy is a match, not "only received in AMQP".
    h.amqp(uuid(1), body(1));
    assert.equal(h.tracker().size, 3);
    h.advance(80_000);
    assert.deepEqual(
      (h.findings as MissingFinding[]).map((f) => [f.id, f.side]),
      [
        [uuid(3), "amqp"],
        [uuid(4), "amqp"],
        [uuid(5), "amqp"],
      ],
    );
    const s = h.tracker().summary();
    assert.equal(s.matched, 1);
    assert.equal(s.overflow, 2);
    assert.equal(s.pending, 0);
  });

  it("keeps the tracker at its cap through 1,000,000 one-sided messages", () => {
    const cap = 10_000;
    const t = new VerifierTracker({ maxPending: cap });
    const msg = { a: 1 };
    for (let n = 0; n < 1_000_000; n++) {
      t.seenZmq(`2026-${n}`, TOPIC, msg, START + n);
      if (t.size > cap) assert.fail(`size ${t.size} over the cap at message ${n}`);
    }
    assert.equal(t.size, cap);
    const s = t.summary();
    assert.equal(s.overflow, 1_000_000 - cap);
    assert.equal(s.pending, cap);
  });

  it("matches early rather than overflow when the tracker is full of completed pairs", () => {
    const t = new VerifierTracker({ maxPending: 4 });
    for (let n = 0; n < 10; n++) {
      t.seenZmq(uuid(n), TOPIC, { n }, START);
      t.seenAmqp(uuid(n), TOPIC, n === 3 ? { n: -1 } : { n }, START + 2);
      assert.ok(t.size <= 4);
    }
    const r = t.match(START + 1000);
    const s = t.summary();
    assert.equal(s.matched, 10);
    assert.equal(s.overflow, 0);
    assert.equal(s.mismatched, 1);
    assert.equal(r.mismatches.length, 1, "the early mismatch is carried to the next match()");
    assert.equal(r.mismatches[0].id, uuid(3));
  });
});

describe("verifier: fed directly", () => {
  it("runs its timers over a tracker the caller feeds without events", () => {
    const clock = new SimulatedClock();
    clock.set(START);
    const tracker = new VerifierTracker({ windowMs: 30_000 });
    const findings: VerifierFinding[] = [];
    const actor = createActor(verifierMachine, {
      clock,
      input: { name: "direct", tracker, now: () => clock.now(), report: (f) => findings.push(f) },
    }).start();
    tracker.seenZmq(`2026-${uuid(1)}`, TOPIC, body(1), clock.now());
    tracker.seenAmqp(`2026-${uuid(1)}`, TOPIC, body(1), clock.now() + 4);
    tracker.seenZmq(`2026-${uuid(2)}`, TOPIC, body(2), clock.now());
    for (let t = 0; t < 40_000; t += 100) clock.increment(100);
    assert.equal(actor.getSnapshot().context.tracker, tracker);
    assert.deepEqual(
      findings.map((f) => [f.kind, f.id]),
      [["missing", uuid(2)]],
    );
    assert.equal(tracker.summary().matched, 1);
    assert.equal(tracker.summary().delayP50Ms, 4);
  });
});

describe("verifier: summary", () => {
  it("logs the summary each check interval with counters and delay percentiles", () => {
    const h = harness();
    // 98 pairs 10 ms apart, 2 pairs 40 ms apart: p50 = 10, p99 = 40 (nearest rank).
    for (let n = 0; n < 100; n++) {
      h.zmq(uuid(n), body(n));
      h.advance(n < 98 ? 10 : 40, 10);
      h.amqp(uuid(n), body(n));
    }
    h.amqp(uuid(500), body(500));
    h.amqp(uuid(500), body(500));
    h.advance(10_000 - h.clock.now() + START - 1, 100);
    assert.deepEqual(h.summaries(), []);
    h.advance(1);
    assert.deepEqual(h.summaries(), [
      "summary verify:test matched=100 missing_amqp=0 missing_zmq=0 mismatched=0 duplicates_zmq=0 duplicates_amqp=1 overflow=0 pending=1 delay_p50_ms=10 delay_p99_ms=40 late=0",
    ]);
    const s = h.tracker().summary();
    assert.equal(s.delaySamples, 100);
    assert.equal(s.delayP50Ms, 10);
    assert.equal(s.delayP99Ms, 40);
    h.advance(10_000);
    assert.equal(h.summaries().length, 2);
  });

  it("keeps large delay percentiles within 3 %", () => {
    const t = new VerifierTracker();
    for (let n = 0; n < 1000; n++) {
      t.seenZmq(uuid(n), TOPIC, {}, START);
      t.seenAmqp(uuid(n), TOPIC, {}, START + 1 + n * 5); // 1 … 4996 ms
    }
    t.match(START + 5000);
    const s = t.summary();
    assert.ok(Math.abs(s.delayP50Ms - 2496) / 2496 < 0.03, `p50 ${s.delayP50Ms}`);
    assert.ok(Math.abs(s.delayP99Ms - 4946) / 4946 < 0.03, `p99 ${s.delayP99Ms}`);
  });

  it("formats the summary line", () => {
    const line = formatSummary("main", {
      matched: 1,
      missingAmqp: 2,
      missingZmq: 3,
      mismatched: 4,
      duplicatesZmq: 5,
      duplicatesAmqp: 6,
      late: 7,
      overflow: 8,
      pending: 9,
      delaySamples: 1,
      delayP50Ms: 10,
      delayP99Ms: 11,
    });
    assert.equal(
      line,
      "summary verify:main matched=1 missing_amqp=2 missing_zmq=3 mismatched=4 duplicates_zmq=5 duplicates_amqp=6 overflow=8 pending=9 delay_p50_ms=10 delay_p99_ms=11 late=7",
    );
  });

  it("on STOP matches what is pending, logs a final summary and stops with it as output", () => {
    const h = harness();
    h.zmq(uuid(1), body(1));
    h.amqp(uuid(1), body(1));
    h.zmq(uuid(2), body(2));
    h.actor.send({ type: "STOP" });
    assert.equal(h.actor.getSnapshot().status, "done");
    assert.ok(h.actor.getSnapshot().matches("stopped"));
    assert.deepEqual(h.warnings(), [], "pending messages are not reported missing before their window");
    assert.equal(h.summaries().length, 1);
    assert.match(h.summaries()[0], /matched=1 .*pending=1 /);
    assert.equal(h.actor.getSnapshot().output?.matched, 1);
  });

  it("with drainMs, takes in-flight messages before stopping", () => {
    const h = harness({ drainMs: 500 });
    h.zmq(uuid(1), body(1));
    h.actor.send({ type: "STOP" });
    assert.ok(h.actor.getSnapshot().matches("draining"));
    h.amqp(uuid(1), body(1));
    h.advance(500);
    assert.equal(h.actor.getSnapshot().status, "done");
    assert.equal(h.actor.getSnapshot().output?.matched, 1);
    assert.equal(h.actor.getSnapshot().output?.pending, 0);
  });
});

describe("verifier: acceptance", () => {
  it("1,000 messages each side, 17 withheld from AMQP and 9 from ZeroMQ, one altered: exactly those reported", () => {
    const h = harness();
    const withheldFromAmqp = new Set<number>();
    const withheldFromZmq = new Set<number>();
    for (let k = 0; withheldFromAmqp.size < 17; k++) withheldFromAmqp.add((k * 53 + 7) % 1000);
    for (let k = 0; withheldFromZmq.size < 9; k++) {
      const n = (k * 97 + 11) % 1000;
      if (!withheldFromAmqp.has(n)) withheldFromZmq.add(n);
    }
    const altered = 500;
    assert.ok(!withheldFromAmqp.has(altered) && !withheldFromZmq.has(altered));

    // Interleaved over ~10 s: each AMQP copy 3 ms after its ZeroMQ copy.
    for (let n = 0; n < 1000; n++) {
      const id = `2026-${uuid(n)}`;
      const topic = `org.fedoraproject.prod.test.${n % 7}`;
      if (!withheldFromZmq.has(n)) h.zmq(id, body(n), topic);
      h.advance(3, 3);
      const amqpBody = n === altered ? { ...body(n), agent: "mallory" } : body(n);
      if (!withheldFromAmqp.has(n)) h.amqp(id, amqpBody, topic);
      h.advance(7, 7);
    }
    h.advance(80_000);

    const missing = h.findings.filter((f): f is MissingFinding => f.kind === "missing");
    const mismatches = h.findings.filter((f): f is MismatchFinding => f.kind === "mismatch");
    assert.equal(h.findings.length, 27);
    assert.deepEqual(
      new Set(missing.filter((f) => f.side === "amqp").map((f) => f.id)),
      new Set([...withheldFromAmqp].map(uuid)),
    );
    assert.deepEqual(
      new Set(missing.filter((f) => f.side === "zmq").map((f) => f.id)),
      new Set([...withheldFromZmq].map(uuid)),
    );
    assert.equal(mismatches.length, 1);
    assert.equal(mismatches[0].id, uuid(altered));
    assert.deepEqual(mismatches[0].keys, ["agent"]);

    const warnings = h.warnings();
    assert.equal(warnings.length, 27);
    assert.equal(warnings.filter((w) => / was only received in ZeroMQ \(at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?, with topic org\.fedoraproject\.prod\.test\.\d\)$/.test(w)).length, 17);
    assert.equal(warnings.filter((w) => / was only received in AMQP \(at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?, with topic org\.fedoraproject\.prod\.test\.\d\)$/.test(w)).length, 9);
    assert.equal(warnings.filter((w) => w.includes("mismatch") && w.includes(uuid(altered)) && w.includes("agent")).length, 1);

    const s = h.tracker().summary();
    assert.deepEqual(
      { matched: s.matched, missingAmqp: s.missingAmqp, missingZmq: s.missingZmq, mismatched: s.mismatched, dz: s.duplicatesZmq, da: s.duplicatesAmqp, overflow: s.overflow, late: s.late, pending: s.pending },
      { matched: 974, missingAmqp: 17, missingZmq: 9, mismatched: 1, dz: 0, da: 0, overflow: 0, late: 0, pending: 0 },
    );
    assert.equal(s.delayP50Ms, 3);
    assert.equal(s.delayP99Ms, 3);
    // --report-json: each finding is one JSON line.
    for (const f of h.findings) {
      const line = JSON.stringify(f);
      assert.ok(!line.includes("\n"));
      assert.deepEqual(JSON.parse(line), f);
    }
  });
});
