// The status page in headless Chromium (Debian's `chromium`, driven by
// playwright-core): the actor tree with live states, each machine's diagram with
// the current state highlighted, following a fault as it happens. Leaves a
// screenshot in test-artifacts/ (git-ignored).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { SimBroker } from "../actors/sim/index.ts";
import { fedmsg, startSimTopology, until, type SimTopology } from "./support/http.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = fileURLToPath(new URL("../test-artifacts/", import.meta.url));
const PASSWORD = "Page-S3cret-pw";

let browser: Browser;
let page: Page;
let topology: SimTopology;

/** The diagram box of `path` in machine `machine`'s card. */
const box = (machine: string, path: string) => `.machine[data-machine="${machine}"] .sm-state[data-path="${path}"]`;

describe("status page in headless Chromium", () => {
  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: install Debian's with \`apt-get install -y chromium\` (scripts/ensure-browser.sh), or set CHROMIUM_PATH`);
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    const broker = new SimBroker({ users: { fedmsg: PASSWORD } });
    topology = await startSimTopology({ url: `amqp://fedmsg:${PASSWORD}@sim/%2F`, broker, pushIntervalMs: 100 });
    await until(async () => (await topology.get("/ready")).status === 200, "/ready to answer 200");
  });

  after(async () => {
    await browser?.close();
    await topology?.stop();
  });

  it("shows the actor tree and highlights each actor's state in its machine's diagram", async () => {
    await page.goto(topology.http.url + "/");
    await page.waitForSelector("#readiness.ready", { timeout: 10_000 });
    // The tree: every named actor, with its machine and state.
    const rows = await page.$$eval("#actors tbody tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].slice(0, 3).map((td) => td.textContent?.trim())));
    const byId = new Map(rows.map((r) => [r[0], r]));
    assert.deepEqual(byId.get("zmq_to_amqp:in"), ["zmq_to_amqp:in", "zmqToAmqp", "forwarding"]);
    assert.deepEqual(byId.get("amqp:main:1"), ["amqp:main:1", "amqpChannel", "open.ready"]);
    assert.deepEqual(byId.get("verify:v"), ["verify:v", "verifyService", "collecting"]);
    assert.deepEqual(byId.get("system"), ["system", "system", "running.up"]);

    // The diagrams: one per running machine, the current state highlighted with its actors.
    const machines = await page.$$eval(".machine", (cards) => cards.map((c) => c.getAttribute("data-machine")));
    assert.deepEqual(machines.sort(), ["amqpChannel", "amqpConnection", "amqpToZmq", "system", "verifyService", "zmqSocket", "zmqToAmqp"]);
    await page.waitForSelector(`${box("zmqToAmqp", "forwarding")}.current`);
    assert.equal(await page.textContent(`${box("zmqToAmqp", "forwarding")} > .sm-actors`), "zmq_to_amqp:in");
    assert.equal(await page.getAttribute(box("zmqToAmqp", "backpressured"), "class"), "sm-state atomic");
    // A nested state: its parent is active, the leaf is current; two channels share the diagram.
    await page.waitForSelector(`${box("amqpChannel", "open")}.active`);
    await page.waitForSelector(`${box("amqpChannel", "open.ready")}.current`);
    assert.equal(await page.textContent(`${box("amqpChannel", "open.ready")} > .sm-actors`), "amqp:main:1amqp:main:2amqp:main:3");
    // Transitions read from the definition (after, always, invoke onDone/onError).
    const draining = await page.textContent(box("zmqToAmqp", "draining"));
    assert.match(draining!, /after drainTimeout → stopped/);
    assert.match(draining!, /always \[drained\] → stopped/);
    assert.match((await page.textContent(box("amqpConnection", "connecting")))!, /invoke connect.*done: connect → connected.*error: connect \[outOfAttempts\] → failed/s);
  });

  it("follows a lost broker live, then its recovery, and keeps a screenshot", async () => {
    await page.waitForSelector("#readiness.ready");
    topology.broker.stop();
    await page.waitForSelector(`${box("zmqToAmqp", "backpressured")}.current`, { timeout: 10_000 });
    await page.waitForSelector("#readiness.notready");
    const reasons = await page.$$eval("#notready li", (lis) => lis.map((li) => li.textContent));
    assert.ok(reasons.some((r) => /^AMQP channel amqp:main:1 is \w+, not open$/.test(r ?? "")), `reasons: ${reasons.join("; ")}`);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}status-page-broker-down.png`, fullPage: true });

    topology.broker.start();
    await page.waitForSelector(`${box("zmqToAmqp", "forwarding")}.current`, { timeout: 10_000 });
    await page.waitForSelector("#readiness.ready", { timeout: 10_000 });
    for (let i = 0; i < 3; i++) await topology.upstream.send(fedmsg());
    await page.waitForFunction(() => /forwarded=3/.test(document.querySelector('#actors tr[data-actor="zmq_to_amqp:in"] .counters')?.textContent ?? ""), undefined, { timeout: 10_000 });
    await page.screenshot({ path: `${ARTIFACTS}status-page.png`, fullPage: true });
    assert.ok(existsSync(`${ARTIFACTS}status-page.png`));

    const html = await page.content();
    assert.ok(html.includes("url=amqp://fedmsg:***@sim/%2F"), "the broker URL is shown, redacted");
    assert.ok(!html.includes(PASSWORD), "the page never shows the broker password");
  });
});
