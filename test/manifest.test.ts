import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadManifest, parseManifest, substituteEnv, type Manifest } from "../schema/manifest.ts";

const manifestPath = (name: string) => fileURLToPath(new URL(`../manifests/${name}`, import.meta.url));

/** The errors of a manifest that must not parse. */
function errorsOf(text: string, file = "test.yaml", env: Record<string, string | undefined> = {}): string[] {
  const result = parseManifest(text, { file, env });
  assert.equal(result.ok, false, "the manifest should have been rejected");
  return result.ok ? [] : result.errors;
}

/** The manifest of a text that must parse. */
function manifestOf(text: string, env: Record<string, string | undefined> = {}): Manifest {
  const result = parseManifest(text, { file: "test.yaml", env });
  if (!result.ok) assert.fail(`unexpected errors:\n${result.errors.join("\n")}`);
  return result.manifest;
}

/** The one error about `path` (exactly `<file>: <path>: …`). */
function errorAt(errors: string[], path: string, file = "test.yaml"): string {
  const found = errors.filter((e) => e.startsWith(`${file}: ${path}: `));
  assert.equal(found.length, 1, `expected one error at ${path}, got:\n${errors.join("\n")}`);
  return found[0];
}

const MINIMAL = `
brokers:
  main:
    url: amqp://guest:guest@127.0.0.1:5672/%2F
bridges:
  - name: from-fedmsg
    kind: zmq_to_amqp
    zmq: { endpoints: [tcp://127.0.0.1:9940] }
    amqp: { broker: main }
`;

describe("substituteEnv", () => {
  it("replaces ${VAR} with the variable's value", () => {
    const result = substituteEnv("url: ${AMQP_URL}\n", { AMQP_URL: "amqp://broker.example.org/%2F" });
    assert.deepEqual(result, { text: "url: amqp://broker.example.org/%2F\n", errors: [] });
  });

  it("uses the default of ${VAR:-default} when VAR is unset or empty, and the value when set", () => {
    const text = "a: ${A:-one}\nb: ${B:-two}\nc: ${C:-three}\n";
    const result = substituteEnv(text, { A: "set", B: "" });
    assert.deepEqual(result, { text: "a: set\nb: two\nc: three\n", errors: [] });
  });

  it("reports an unset variable without default, naming the variable and the line", () => {
    const result = substituteEnv("brokers:\n  main:\n    url: ${MISSING_URL}\n", {});
    assert.equal(result.errors.length, 1);
    assert.match(result.errors[0], /^line 3: /);
    assert.match(result.errors[0], /MISSING_URL is not set/);
    assert.match(result.errors[0], /\$\{MISSING_URL:-<default>\}/, "the fix shows how to give a default");
    assert.equal(result.text, "brokers:\n  main:\n    url: ${MISSING_URL}\n", "an unresolved reference stays as written");
  });

  it("leaves comments alone and turns $${ into a literal ${", () => {
    const result = substituteEnv("# ${UNSET}\na: 1 # ${UNSET}\nb: $${NOT_A_VAR}\nc: '# ${X}'\n", { X: "x" });
    assert.deepEqual(result, { text: "# ${UNSET}\na: 1 # ${UNSET}\nb: ${NOT_A_VAR}\nc: '# x'\n", errors: [] });
  });

  it("reports malformed references", () => {
    const result = substituteEnv("a: ${not-a-name}\nb: ${OPEN\n", {});
    assert.equal(result.errors.length, 2);
    assert.match(result.errors[0], /^line 1: .*not a valid variable reference/);
    assert.match(result.errors[1], /^line 2: .*without a closing/);
  });

  it("is applied by parseManifest, and its errors carry the file name", () => {
    const manifest = manifestOf(MINIMAL.replace("amqp://guest:guest@127.0.0.1:5672/%2F", "${URL:-amqp://fallback/%2F}"), {});
    assert.equal(manifest.brokers.main.url, "amqp://fallback/%2F");
    const errors = errorsOf(MINIMAL.replace("amqp://guest:guest@127.0.0.1:5672/%2F", "${URL}"), "m.yaml");
    assert.deepEqual(errors.length, 1, `an unset variable is one error, not also a bad URL:\n${errors.join("\n")}`);
    assert.match(errors[0], /^m\.yaml: line 4: environment variable URL is not set/);
  });
});

describe("parseManifest defaults", () => {
  it("gives a minimal manifest every default, deeply", () => {
    const manifest = manifestOf(MINIMAL);
    assert.deepEqual(manifest, {
      brokers: { main: { url: "amqp://guest:guest@127.0.0.1:5672/%2F", heartbeat: 30, max_attempts: null } },
      bridges: [
        {
          name: "from-fedmsg",
          kind: "zmq_to_amqp",
          zmq: { endpoints: ["tcp://127.0.0.1:9940"], topics: [] },
          amqp: { broker: "main", exchange: "zmq.topic", alternate_exchange: null, on_refused: "keep", dead_letter_exchange: null },
          buffer: { max_messages: 100000, max_bytes: 268435456, overflow: "drop-newest", spool_dir: null },
          window: 1000,
        },
      ],
      verifiers: [],
      publishers: [],
      supervision: { base_delay_ms: 500, max_delay_ms: 30000, max_restarts: 5, window_s: 60 },
      shutdown: { drain_timeout_ms: 5000 },
      http: { listen: null },
    });
  });

  it("merges a partial nested section with its defaults", () => {
    const manifest = manifestOf(`${MINIMAL}    buffer: { overflow: spool, spool_dir: /var/spool/bridge }\nsupervision: { max_restarts: 9 }\n`);
    const bridge = manifest.bridges[0];
    assert.equal(bridge.kind, "zmq_to_amqp");
    if (bridge.kind !== "zmq_to_amqp") return;
    assert.deepEqual(bridge.buffer, { max_messages: 100000, max_bytes: 268435456, overflow: "spool", spool_dir: "/var/spool/bridge" });
    assert.deepEqual(manifest.supervision, { base_delay_ms: 500, max_delay_ms: 30000, max_restarts: 9, window_s: 60 });
  });

  it("fills the defaults of the other kinds of entries", () => {
    const manifest = manifestOf(`
brokers: { main: { url: "amqps://broker.example.org/%2F", tls: { ca_cert: /etc/ca.pem } } }
bridges:
  - { name: to-fedmsg, kind: amqp_to_zmq, amqp: { broker: main } }
verifiers:
  - { name: main, zmq: { endpoints: [tcp://127.0.0.1:9940] }, amqp: { broker: main } }
publishers:
  - { name: sample-fedmsg, kind: fedmsg_sample, endpoint: tcp://127.0.0.1:19941 }
  - { name: sample-amqp, kind: amqp_sample, broker: main }
`);
    assert.deepEqual(manifest.brokers.main.tls, { ca_cert: "/etc/ca.pem", insecure: false });
    assert.deepEqual(manifest.bridges[0], {
      name: "to-fedmsg",
      kind: "amqp_to_zmq",
      zmq: { publish_endpoint: "tcp://*:9940", remote_publish: false },
      amqp: { broker: "main", exchange: "amq.topic", queue: "", binding_keys: ["#"], prefetch: 1000, dead_letter_exchange: null },
    });
    assert.deepEqual(manifest.verifiers[0], {
      name: "main",
      zmq: { endpoints: ["tcp://127.0.0.1:9940"] },
      amqp: { broker: "main", exchanges: ["zmq.topic", "amq.topic"], queue: "amqp_bridge_verify_missing" },
      window: 60,
      match_interval: 1,
      check_interval: 10,
      max_pending: 200000,
      report_json: null,
    });
    assert.deepEqual(manifest.publishers, [
      { name: "sample-fedmsg", kind: "fedmsg_sample", endpoint: "tcp://127.0.0.1:19941", rate: 20 },
      { name: "sample-amqp", kind: "amqp_sample", broker: "main", exchange: "amq.topic", rate: 20 },
    ]);
  });

  it("gives every manifest its own copy of the defaults", () => {
    const topicsOf = (manifest: Manifest): string[] => {
      const bridge = manifest.bridges[0];
      assert.equal(bridge.kind, "zmq_to_amqp");
      return bridge.kind === "zmq_to_amqp" ? (bridge.zmq.topics as string[]) : [];
    };
    topicsOf(manifestOf(MINIMAL)).push("changed");
    assert.deepEqual(topicsOf(manifestOf(MINIMAL)), []);
  });
});

describe("the example manifests", () => {
  it("parses the two-broker example: two vhosts, four bridges", () => {
    const result = loadManifest(manifestPath("example-two-brokers.yaml"), {});
    if (!result.ok) assert.fail(result.errors.join("\n"));
    const { manifest } = result;
    assert.deepEqual(Object.keys(manifest.brokers), ["main", "fedmsg-b"]);
    assert.equal(manifest.brokers.main.url, "amqp://guest:guest@127.0.0.1:5672/%2F");
    assert.equal(manifest.brokers["fedmsg-b"].url, "amqp://guest:guest@127.0.0.1:5672/fedmsg-b");
    assert.deepEqual(
      manifest.bridges.map((b) => [b.name, b.kind, b.amqp.broker]),
      [
        ["from-fedmsg", "zmq_to_amqp", "main"],
        ["to-fedmsg", "amqp_to_zmq", "main"],
        ["from-fedmsg-b", "zmq_to_amqp", "fedmsg-b"],
        ["to-fedmsg-b", "amqp_to_zmq", "fedmsg-b"],
      ],
    );
    assert.equal(manifest.verifiers.length, 2);
    assert.equal(manifest.publishers.length, 2);
    assert.equal(manifest.http.listen, "127.0.0.1:9100");
  });

  it("takes broker URLs from the environment when set", () => {
    const result = loadManifest(manifestPath("example-two-brokers.yaml"), { AMQP_URL_B: "amqps://b.example.org/fedmsg-b" });
    if (!result.ok) assert.fail(result.errors.join("\n"));
    assert.equal(result.manifest.brokers["fedmsg-b"].url, "amqps://b.example.org/fedmsg-b");
  });

  describe("the broken copy", () => {
    const file = manifestPath("broken-two-brokers.yaml");
    const result = loadManifest(file, {});
    const errors = result.ok ? [] : result.errors;
    const at = (path: string) => errorAt(errors, path, file);

    it("is rejected", () => {
      assert.equal(result.ok, false);
    });

    // Each mistake of the file: the path it must be reported at, and what the message must say.
    const expected: Array<[kind: string, path: string, what: RegExp, fix: RegExp]> = [
      ["URL scheme", "brokers.main.url", /expected an amqp:\/\/ or amqps:\/\/ URL/, /write amqp:\/\//],
      ["wrong type", "brokers.main.heartbeat", /expected a whole number ≥ 0, got "thirty"/, /e\.g\. 30/],
      ["negative number", "brokers.fedmsg-b.max_attempts", /got -3/, /null to retry forever/],
      ["invalid broker name", 'brokers["bad name"]', /not a valid broker name/, /bad-name/],
      ["tls with amqp://", 'brokers["bad name"].tls', /amqp:\/\/ \(no TLS\)/, /amqps:\/\//],
      ["missing required key", "bridges[0].zmq.endpoints", /required key is missing/, /add endpoints: \[tcp:\/\//],
      ["unknown broker", "bridges[0].amqp.broker", /"main2" is not a broker of this manifest \(brokers: main, fedmsg-b, bad name\)/, /did you mean main\?/],
      ["loop: zmq_to_amqp to amq.topic", "bridges[0].amqp.exchange", /would loop/, /zmq\.topic/],
      ["spool without spool_dir", "bridges[0].buffer.spool_dir", /overflow is spool but no spool_dir/, /add spool_dir:/],
      ["unknown key", "bridges[0].windw", /unknown key "windw"/, /rename it to window \(valid keys here: name, kind, zmq, amqp, buffer, window, signatures\)/],
      ["loop: amqp_to_zmq from zmq.topic", "bridges[1].amqp.exchange", /would loop/, /amq\.topic/],
      ["duplicate name", "bridges[2].name", /"from-fedmsg" is already the name of bridges\[0\]/, /its own name/],
      ["empty list", "bridges[2].zmq.endpoints", /non-empty list/, /at least one/],
      ["negative number", "bridges[2].window", /got -5/, /e\.g\. 1000/],
      ["unknown enum value", "bridges[2].buffer.overflow", /expected one of drop-newest, spool, got "drop-oldest"/, /did you mean drop-newest\?/],
      ["two binds of one endpoint", "bridges[3].zmq.publish_endpoint", /already bound by bridges\[1\]/, /another port/],
      ["not a whole number", "bridges[3].amqp.prefetch", /got 1\.5/, /e\.g\. 1000/],
      ["unknown bridge kind", "bridges[4].kind", /"amqp_to_zmqq" is not a known kind/, /did you mean amqp_to_zmq\?/],
      ["connect to a wildcard", "verifiers[0].zmq.endpoints[0]", /can only be bound/, /tcp:\/\/127\.0\.0\.1:19940/],
      ["unknown broker (verifier)", "verifiers[0].amqp.broker", /"fedmsg-c" is not a broker/, /did you mean fedmsg-b\?/],
      ["not positive", "publishers[0].rate", /expected a number > 0, got 0/, /messages per second/],
      ["max below base", "supervision.max_delay_ms", /below base_delay_ms/, /raise max_delay_ms/],
      ["listen format", "http.listen", /expected host:port/, /127\.0\.0\.1:9100/],
    ];

    for (const [kind, path, what, fix] of expected) {
      it(`reports ${kind} at ${path}`, () => {
        const message = at(path);
        const [problem, remedy] = message.slice(`${file}: ${path}: `.length).split(/; (.*)/s);
        assert.match(problem, what);
        assert.match(problem, / \(line \d+\)$/, "the line is given");
        assert.match(remedy ?? "", fix);
      });
    }

    it("reports the unset variable with its line", () => {
      const env = errors.filter((e) => e.includes("FEDMSG_B_URL"));
      assert.equal(env.length, 1, `one error for the unset variable, none for what it breaks:\n${errors.join("\n")}`);
      assert.match(env[0], /: line 11: environment variable FEDMSG_B_URL is not set/);
    });

    it("covers at least 8 kinds of mistakes and reports nothing else", () => {
      assert.ok(new Set(expected.map(([kind]) => kind)).size >= 8);
      assert.equal(errors.length, expected.length + 1, errors.join("\n"));
    });

    it("gives each message the form <file>: <path>: <what is wrong>; <the fix>", () => {
      for (const error of errors) {
        assert.ok(error.startsWith(`${file}: `), error);
        assert.match(error.slice(file.length + 2), /^[^:]+: .+; .+$/s, error);
      }
    });

    it("never prints a password", () => {
      assert.ok(errors.every((e) => !e.includes("guest:guest")), errors.join("\n"));
    });
  });
});

describe("parseManifest errors", () => {
  it("reports YAML syntax errors with their line", () => {
    const errors = errorsOf("brokers:\n  main:\n    url: amqp://x\n   heartbeat: 3\n", "bad.yaml");
    assert.ok(errors.length >= 1);
    assert.match(errors[0], /^bad\.yaml: line 4, column \d+: .+; .+/);
  });

  it("reports duplicate keys", () => {
    const errors = errorsOf("brokers:\n  main:\n    url: amqp://x\n    url: amqp://y\n");
    assert.equal(errors.length, 1);
    assert.match(errors[0], /line 4, .*unique; remove or rename one of the two keys/);
  });

  it("reports an empty manifest", () => {
    const errors = errorsOf("# nothing here\n");
    assert.match(errors[0], /^test\.yaml: \(top level\): the manifest is empty; add at least brokers:/);
  });

  it("reports missing brokers and a manifest without any", () => {
    assert.match(errorAt(errorsOf("bridges: []\n"), "brokers"), /required key is missing.*; add brokers:/);
    assert.match(errorAt(errorsOf("brokers: {}\n"), "brokers"), /at least one broker/);
  });

  it("reports typos of top-level keys with the valid ones", () => {
    const error = errorAt(errorsOf(`${MINIMAL}verifier: []\n`), "verifier");
    assert.match(error, /unknown key "verifier".*; rename it to verifiers \(valid keys here: brokers, bridges, verifiers, publishers, supervision, shutdown, http\)/);
  });

  it("suggests the key a swapped-letters typo meant", () => {
    const error = errorAt(errorsOf("brokers:\n  main:\n    url: amqp://x/%2F\n    tsl: {}\n"), "brokers.main.tsl");
    assert.match(error, /unknown key "tsl" \(line 4\); rename it to tls \(valid keys here: url, heartbeat, max_attempts, tls\)/);
  });

  it("tells to remove the quotes around a number", () => {
    const error = errorAt(errorsOf(`${MINIMAL}    window: "500"\n`), "bridges[0].window");
    assert.match(error, /got "500".*; remove the quotes: write 500/);
  });

  it("reports a missing or unknown kind, and an entry that is not a mapping", () => {
    const errors = errorsOf(`
brokers: { main: { url: "amqp://x/%2F" } }
bridges:
  - { name: a, amqp: { broker: main } }
  - { name: b, kind: amqp_to_zmq, amqp: { broker: main }, zmq: { publish_endpoint: "tcp://*:9941" } }
  - just a string
`);
    assert.match(errorAt(errors, "bridges[0].kind"), /required key is missing.*; add kind: one of zmq_to_amqp, amqp_to_zmq/);
    assert.match(errorAt(errors, "bridges[2]"), /expected a mapping with kind: one of zmq_to_amqp, amqp_to_zmq, got "just a string"/);
    assert.equal(errors.length, 2, errors.join("\n"));
  });

  it("reports the settings that only make sense together", () => {
    const errors = errorsOf(`
brokers:
  main: { url: "amqps://x/%2F", tls: { certfile: /etc/cert.pem } }
bridges:
  - name: a
    kind: zmq_to_amqp
    zmq: { endpoints: [tcp://127.0.0.1:9940] }
    amqp: { broker: main }
    signatures: { validate: true }
  - name: b
    kind: amqp_to_zmq
    zmq: { publish_endpoint: "tcp://*:9941", remote_publish: true }
    amqp: { broker: main }
    signing: { certname: bridge, keyfile: /etc/key.pem }
`);
    assert.match(errorAt(errors, "brokers.main.tls.keyfile"), /certfile is set but keyfile is not/);
    assert.match(errorAt(errors, "bridges[0].signatures.ca_cert"), /validate is true but no ca_cert/);
    assert.match(errorAt(errors, "bridges[1].zmq.publish_endpoint"), /has no host.*; write the relay's address/);
    assert.match(errorAt(errors, "bridges[1].signing"), /expected either \{ certname, ssldir \} or \{ keyfile, certfile \}/);
    assert.equal(errors.length, 4, errors.join("\n"));
  });

  it("sees that a wildcard bind and a specific bind of one port collide", () => {
    const errors = errorsOf(`
brokers: { main: { url: "amqp://x/%2F" } }
bridges:
  - { name: a, kind: amqp_to_zmq, amqp: { broker: main } }
publishers:
  - { name: p, kind: fedmsg_sample, endpoint: "tcp://127.0.0.1:9940" }
`);
    assert.match(errorAt(errors, "publishers[0].endpoint"), /already bound by bridges\[0\] \(tcp:\/\/\*:9940\)/);
  });

  it("accepts JSON, and reports JSON mistakes with paths too", () => {
    const json = JSON.stringify({
      brokers: { main: { url: "amqp://guest:guest@127.0.0.1:5672/%2F" } },
      bridges: [{ name: "to-fedmsg", kind: "amqp_to_zmq", amqp: { broker: "main" } }],
    }, null, 2);
    const result = parseManifest(json, { file: "m.json", env: {} });
    if (!result.ok) assert.fail(result.errors.join("\n"));
    assert.equal(result.manifest.bridges[0].kind, "amqp_to_zmq");
    assert.equal(result.manifest.shutdown.drain_timeout_ms, 5000);

    const broken = JSON.stringify({ brokers: { main: { url: "amqp://x/%2F", heartbeat: -1 } } }, null, 2);
    const errors = errorsOf(broken, "m.json");
    assert.match(errorAt(errors, "brokers.main.heartbeat", "m.json"), /got -1 \(line 5\); /);
  });

  it("reports a manifest file that cannot be read", () => {
    const result = loadManifest("/nonexistent/manifest.yaml", {});
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.errors[0], /^\/nonexistent\/manifest\.yaml: cannot read the manifest/);
  });

  it("keeps the example in docs/manifest.md valid", () => {
    const doc = readFileSync(fileURLToPath(new URL("../docs/manifest.md", import.meta.url)), "utf8");
    const full = /```yaml\n([\s\S]*?)```/.exec(doc);
    assert.ok(full, "docs/manifest.md has a yaml example");
    manifestOf(full[1]);
  });
});
