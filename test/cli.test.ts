// The command line as an operator meets it: help on every command, exit 2 for
// bad arguments and invalid manifests, exit 1 with a one-line reason when the
// broker stays unreachable, no stack traces.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cliCommand } from "./support/system.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

function cli(...args: string[]) {
  const [command, argv] = cliCommand(args);
  const r = spawnSync(command, argv, { cwd: root, encoding: "utf8", timeout: 60_000, env: { ...process.env, FEDORA_MESSAGING_CONF: "/nonexistent" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("fedmsg-migration-tools CLI", () => {
  for (const command of ["zmq_to_amqp", "amqp_to_zmq", "verify_missing", "run", "validate", "diagram"]) {
    it(`${command} --help`, () => {
      const r = cli(command, "--help");
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, new RegExp(`^usage: fedmsg-migration-tools ${command}`));
    });
  }

  it("--help lists every command", () => {
    const r = cli("--help");
    assert.equal(r.code, 0);
    for (const c of ["zmq_to_amqp", "amqp_to_zmq", "verify_missing", "run", "validate"]) assert.ok(r.out.includes(c));
  });

  it("bad arguments exit 2 with one line that says what is wrong", () => {
    const cases: [string[], RegExp][] = [
      [["nonsense"], /unknown command "nonsense"/],
      [["zmq_to_amqp"], /--zmq-endpoint is required/],
      [["zmq_to_amqp", "--zmq-endpoint", "tcp://127.0.0.1:9940", "--bogus"], /Unknown option '--bogus'/],
      [["verify_missing", "--zmq-endpoint", "tcp://127.0.0.1:9940", "--window", "soon"], /--window must be a positive number/],
      [["amqp_to_zmq", "--prefetch", "0"], /--prefetch must be a positive number/],
      [["run"], /--manifest FILE is required/],
      [["zmq_to_amqp", "--zmq-endpoint", "tcp://127.0.0.1:9940", "--log-format", "xml"], /--log-format must be human or json/],
      [["zmq_to_amqp", "--zmq-endpoint", "not-an-endpoint"], /zmq.endpoints\[0\]/],
    ];
    for (const [args, expected] of cases) {
      const r = cli(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
      assert.match(r.err, expected);
      assert.doesNotMatch(r.err, /\n\s+at /, "no stack trace");
    }
  });

  it("validate: exit 0 for a valid manifest, 2 with every mistake and its path for a broken one", () => {
    assert.equal(cli("validate", "--manifest", "manifests/demo.yaml").code, 0);
    const r = cli("validate", "--manifest", "manifests/broken-two-brokers.yaml");
    assert.equal(r.code, 2);
    const lines = r.err.trim().split("\n");
    assert.ok(lines.length >= 8, r.err);
    // Each names the file, then a path (or the line, for what precedes the schema) and the fix.
    for (const line of lines) assert.match(line, /^manifests\/broken-two-brokers\.yaml: (line \d+|[\w.[\]-]*(\["[^"]*"\])?[\w.[\]-]*): .+; .+/);
    assert.ok(r.err.includes(`bridges[0].amqp.broker`) || r.err.includes("is not a broker of this manifest"));
  });

  it("an unreachable broker: one clear line per attempt budget, then exit 1 without a stack trace", () => {
    const dir = mkdtempSync(join(tmpdir(), "cli-"));
    const manifest = join(dir, "m.json");
    writeFileSync(
      manifest,
      JSON.stringify({
        brokers: { main: { url: "amqp://guest:secret-pw@127.0.0.1:1/%2F", max_attempts: 2 } },
        bridges: [{ name: "x", kind: "zmq_to_amqp", zmq: { endpoints: ["tcp://127.0.0.1:9"] }, amqp: { broker: "main" } }],
      }),
    );
    const r = cli("run", "--manifest", manifest);
    assert.equal(r.code, 1, r.err + r.out);
    assert.match(r.err, /cannot reach the broker at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1\/%2F: .*is RabbitMQ running\?/);
    assert.match(r.out, /fatal: amqp:main gave up/);
    assert.doesNotMatch(r.err + r.out, /secret-pw/, "the password never appears");
    assert.doesNotMatch(r.err + r.out, /\n\s+at /, "no stack trace");
  });
});
