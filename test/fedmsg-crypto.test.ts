import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Buffer } from "node:buffer";
import {
  JsonNumber,
  canonicalStringify,
  parseLossless,
  pythonFloatRepr,
  pythonNumberText,
  type JsonObject,
} from "../lib/canonical-json.ts";
import {
  INVALID_REASONS,
  createSigner,
  createValidator,
  loadSigner,
  signEnvelope,
  signingInput,
  validateEnvelope,
  type ValidationResult,
  type ValidatorConfig,
} from "../lib/fedmsg-crypto.ts";

const FIX = fileURLToPath(new URL("./fixtures/signed/", import.meta.url));
const KEYS = join(FIX, "fedmsg-test_certs/keys");
const read = (p: string) => readFileSync(join(FIX, p), "utf8");
const lines = (p: string) => read(p).split("\n").filter((l) => l.trim() !== "");

const CA = read("fedmsg-test_certs/keys/ca.crt");
const CRL = read("fedmsg-test_certs/keys/crl.pem");
const FEDORA_CA = read("fedmsg-test_certs/keys/fedora_ca.crt");
const BAD_CA = read("fedmsg-test_certs/keys/badca.crt");
const HISTORICAL_CA = read("fedmsg-test_certs/historical-19ad0e8/ca.crt");
const EXPIRED_CRL = read("fedmsg-test_certs/keys/expired_crl.pem");
const APP01 = "shell-app01.phx2.fedoraproject.org";
const APP01_MATERIAL = {
  keyPem: read(`fedmsg-test_certs/keys/${APP01}.key`),
  certPem: read(`fedmsg-test_certs/keys/${APP01}.crt`),
};
const MIGRATION_TOOLS_MATERIAL = {
  keyPem: read("fedmsg-migration-tools/fixtures/fedmsg.key"),
  certPem: read("fedmsg-migration-tools/fixtures/fedmsg.crt"),
};
/** The day the fixtures were checked (signed/README.md); the derived vectors' "now". */
const FIXTURE_DAY = new Date("2026-11-28T00:00:00Z");

function expectInvalid(r: ValidationResult, reason: string): void {
  assert.equal(r.valid, false, `expected invalid (${reason}), got ${JSON.stringify(r)}`);
  if (!r.valid) assert.equal(r.reason, reason, r.detail);
}

function expectValid(r: ValidationResult, signer: string): void {
  assert.deepEqual(r, { valid: true, signer });
}

describe("canonical JSON (fedmsg.encoding.dumps)", () => {
  it("writes floats and big integers from Python-written JSON exactly as Python does", () => {
    const src = '{"b": 1.0, "a": 1e-07, "c": 0.1, "d": 1379638157.759283, "e": 12345678901234567890}';
    // python3: json.dumps(json.loads(src), sort_keys=True, separators=(",", ":"))
    assert.equal(
      canonicalStringify(parseLossless(src)),
      '{"a":1e-07,"b":1.0,"c":0.1,"d":1379638157.759283,"e":12345678901234567890}',
    );
  });

  it("writes numbers built in JS as Python would (int for integral, float repr otherwise)", () => {
    const value: JsonObject = {
      timestamp: 1700000000,
      f: 0.1,
      g: 1e-7,
      h: JsonNumber.float(1),
      big: 12345678901234567890n,
      x: 1e16,
      z: JsonNumber.float(1.5e16),
      n: JsonNumber.float(-0),
      m: Infinity,
    };
    // python3: {"timestamp": 1700000000, "f": 0.1, "g": 1e-7, "h": 1.0, "big": 12345678901234567890,
    //           "x": 10**16, "z": 1.5e16, "n": -0.0, "m": float("inf")}
    assert.equal(
      canonicalStringify(value),
      '{"big":12345678901234567890,"f":0.1,"g":1e-07,"h":1.0,"m":Infinity,"n":-0.0,"timestamp":1700000000,"x":10000000000000000,"z":1.5e+16}',
    );
  });

  it("re-emits number tokens as Python's json.loads + json.dumps would", () => {
    const cases: Array<[string, string]> = [
      ["1E5", "100000.0"],
      ["-0", "0"],
      ["1E400", "Infinity"],
      ["0e0", "0.0"],
      ["1.50", "1.5"],
      ["NaN", "NaN"],
      ["-Infinity", "-Infinity"],
      ["1e16", "1e+16"],
      ["1e15", "1000000000000000.0"],
      ["0.0001", "0.0001"],
      ["0.00001", "1e-05"],
      ["5e-324", "5e-324"],
      ["1.7976931348623157e308", "1.7976931348623157e+308"],
      ["123456789012345678.0", "1.2345678901234568e+17"],
      ["0.30000000000000004", "0.30000000000000004"],
      ["-1.5e-10", "-1.5e-10"],
      ["1e22", "1e+22"],
      ["12345678901234567890", "12345678901234567890"],
    ];
    for (const [token, python] of cases) {
      assert.equal(pythonNumberText(token), python, token);
      assert.equal(canonicalStringify(parseLossless(token)), python, token);
    }
    assert.equal(pythonFloatRepr(1), "1.0");
    assert.equal(pythonFloatRepr(1e-7), "1e-07");
    assert.equal(pythonFloatRepr(0.1), "0.1");
    assert.equal(pythonFloatRepr(1379638157.759283), "1379638157.759283");
  });

  it("escapes non-ASCII as \\uXXXX (surrogate pairs) and sorts keys by code point", () => {
    const value = { "é": "😀", "\ue000": 1, "😀key": 2, ctl: "\x7f\x00\n\t\"\\/\u2028" };
    // python3 (code-point order puts U+E000 before U+1F600; UTF-16 order would not)
    assert.equal(
      canonicalStringify(value),
      '{"ctl":"\\u007f\\u0000\\n\\t\\"\\\\/\\u2028","\\u00e9":"\\ud83d\\ude00","\\ue000":1,"\\ud83d\\ude00key":2}',
    );
  });

  it("parses like Python's json.loads: last duplicate key wins, bad input is rejected", () => {
    assert.equal(canonicalStringify(parseLossless('{"a":1,"a":2}')), '{"a":2}');
    for (const bad of ["", "{", '{"a":1,}', "[1 2]", "01", '"\u0001"', '"\\x"', "tru", "{} x"]) {
      assert.throws(() => parseLossless(bad), SyntaxError, JSON.stringify(bad));
    }
    const proto = parseLossless('{"__proto__":{"polluted":1}}') as JsonObject;
    assert.equal(Object.getPrototypeOf(proto), Object.prototype);
    assert.equal(canonicalStringify(proto), '{"__proto__":{"polluted":1}}');
  });

  it("keeps numbers lossless: JsonNumber only where a JS number would print differently", () => {
    const v = parseLossless('[1, 1.0, 0.1, 12345678901234567890, -0.0, 1e400]') as unknown[];
    assert.equal(v[0], 1);
    assert.ok(v[1] instanceof JsonNumber && v[1].raw === "1.0");
    assert.equal(v[2], 0.1);
    assert.ok(v[3] instanceof JsonNumber && v[3].toBigInt() === 12345678901234567890n);
    assert.ok(v[4] instanceof JsonNumber);
    assert.ok(v[5] instanceof JsonNumber);
  });

  it("reproduces every real wire frame byte for byte (they are Python-written)", () => {
    const wire = lines("real/real-signed-wire.jsonl");
    assert.equal(wire.length, 29);
    for (const line of wire) assert.equal(canonicalStringify(parseLossless(line)), line);
  });
});

interface Vector {
  scenario: string;
  signer: string | null;
  zmq_body_frame: string;
  validate_with: {
    ca_cert_location: string;
    crl_location: string | null;
    routing_policy?: Record<string, string[]>;
    routing_nitpicky?: boolean;
  };
  expected_valid: boolean;
}

/** validate_with paths are relative to signed/fedmsg-test_certs/ ("keys/...") or to signed/. */
function vectorFile(p: string): string {
  return p.startsWith("keys/") ? read(`fedmsg-test_certs/${p}`) : read(p);
}

function vectorConfig(v: Vector, at: Date = FIXTURE_DAY): ValidatorConfig {
  const w = v.validate_with;
  return {
    caPem: vectorFile(w.ca_cert_location),
    crlPem: w.crl_location ? vectorFile(w.crl_location) : null,
    routingPolicy: w.routing_policy,
    routingNitpicky: w.routing_nitpicky,
    at,
  };
}

const VECTORS: Vector[] = lines("derived/derived-signed-vectors.jsonl").map((l) => JSON.parse(l));

describe("derived signed vectors (fedmsg test cases)", () => {
  // The reason each scenario must fail with (the vectors only say valid/invalid and why, in words).
  const reasons: Record<string, string | null> = {
    sign_and_verify: null,
    no_crl: null,
    valid_policy: null,
    invalid_policy: "routing_policy",
    invalid_ca: "untrusted",
    invalid_signing_cert: "bad_signature",
    signed_by_revoked_cert: "revoked",
    invalid_message_signature: "bad_signature",
    signed_by_expired_ca: "expired",
    old_crl: "bad_crl",
    unsigned: "no_signature",
    consumer_valid_signature: null,
    consumer_invalid_signature: "bad_signature",
    migration_tools_amqp_to_zmq_signed: "expired",
  };

  it("has the 14 scenarios", () => {
    assert.deepEqual(VECTORS.map((v) => v.scenario).sort(), Object.keys(reasons).sort());
  });

  for (const v of VECTORS) {
    it(`${v.scenario}: expected_valid=${v.expected_valid}`, () => {
      const r = validateEnvelope(v.zmq_body_frame, vectorConfig(v));
      assert.equal(r.valid, v.expected_valid, JSON.stringify(r));
      const reason = reasons[v.scenario];
      if (reason === null) expectValid(r, APP01);
      else expectInvalid(r, reason);
    });
  }

  const byName = (s: string) => VECTORS.find((v) => v.scenario === s)!;

  it("old_crl: expired is reported first; inside its validity the CRL signature fails against ca.crt", () => {
    const v = byName("old_crl");
    const r = validateEnvelope(v.zmq_body_frame, vectorConfig(v));
    assert.ok(!r.valid && /CRL has expired/.test(r.detail), JSON.stringify(r));
    const revoked = byName("signed_by_revoked_cert");
    const rr = validateEnvelope(revoked.zmq_body_frame, vectorConfig(revoked));
    assert.ok(!rr.valid && /serial 02/.test(rr.detail), JSON.stringify(rr));
    // 2012-07-20: the CRL is current, ca.crt is not yet valid, but revocation is checked before times.
    const r2 = validateEnvelope(v.zmq_body_frame, vectorConfig(v, new Date("2012-07-20T00:00:00Z")));
    assert.ok(!r2.valid && r2.reason === "bad_crl" && /signature failure/.test(r2.detail), JSON.stringify(r2));
  });

  it("expired_crl.pem (md5WithRSA) verifies against its own 2012 CA", () => {
    const v = byName("migration_tools_amqp_to_zmq_signed");
    const at = new Date("2012-07-20T00:00:00Z");
    expectValid(validateEnvelope(v.zmq_body_frame, { caPem: HISTORICAL_CA, crlPem: EXPIRED_CRL, at }), "fedmsg");
  });

  it("migration-tools fixture verifies before its CA expired (the README's 'time check off' case)", () => {
    const v = byName("migration_tools_amqp_to_zmq_signed");
    expectValid(validateEnvelope(v.zmq_body_frame, vectorConfig(v, new Date("2020-01-01T00:00:00Z"))), "fedmsg");
  });

  it("the revoked signer verifies without a CRL", () => {
    const v = byName("signed_by_revoked_cert");
    expectValid(validateEnvelope(v.zmq_body_frame, { caPem: CA, at: FIXTURE_DAY }), "dummy-revoked");
  });

  it("signEnvelope reproduces the vectors byte for byte (PKCS#1 v1.5 is deterministic)", () => {
    const app01 = createSigner(APP01_MATERIAL);
    const same = ["sign_and_verify", "no_crl", "valid_policy", "invalid_policy", "invalid_ca", "old_crl", "consumer_valid_signature"];
    for (const s of same) {
      const v = byName(s);
      const parsed = parseLossless(v.zmq_body_frame) as JsonObject;
      assert.equal(app01.sign(parsed).body, v.zmq_body_frame, s);
    }
    const mt = byName("migration_tools_amqp_to_zmq_signed");
    const signed = signEnvelope(parseLossless(mt.zmq_body_frame) as JsonObject, MIGRATION_TOOLS_MATERIAL);
    assert.equal(signed.body, mt.zmq_body_frame);
  });
});

interface Expectation {
  n: number;
  msg_id: string;
  signer_cn: string;
  signer_not_after: string;
  chain_fedora_ca_at_2023_01_01: boolean;
  chain_badca_original_fedora_ca_at_msg_time: boolean;
  chain_fedmsg_test_ca: boolean;
  expected_fedmsg_validate_wire_form_as_of_2026_11: boolean;
}

describe("29 real production messages (real-signed-wire.jsonl)", () => {
  const wire = lines("real/real-signed-wire.jsonl");
  const exp: Expectation[] = lines("real/real-signed-expectations.jsonl").map((l) => JSON.parse(l));
  const at2023 = createValidator({ caPem: FEDORA_CA, at: new Date("2023-01-01T00:00:00Z") });
  const onFixtureDay = createValidator({ caPem: FEDORA_CA, at: () => FIXTURE_DAY }); // clock as a function
  const today = createValidator({ caPem: FEDORA_CA });

  it("line n matches expectation n", () => {
    assert.equal(wire.length, 29);
    assert.equal(exp.length, 29);
    wire.forEach((l, i) => assert.equal((parseLossless(l) as JsonObject).msg_id, exp[i].msg_id));
  });

  it("all 29 verify against fedora_ca.crt with the clock at 2023-01-01", () => {
    wire.forEach((l, i) => {
      assert.equal(exp[i].chain_fedora_ca_at_2023_01_01, true);
      expectValid(at2023(l), exp[i].signer_cn);
    });
  });

  it("on 2026-11-28: 27 expired, the 2 fedmsg-migration-tools messages valid (as expected_fedmsg_validate)", () => {
    let valid = 0;
    wire.forEach((l, i) => {
      const r = onFixtureDay(l);
      if (exp[i].expected_fedmsg_validate_wire_form_as_of_2026_11) {
        expectValid(r, exp[i].signer_cn);
        valid++;
      } else {
        expectInvalid(r, "expired");
      }
    });
    assert.equal(valid, 2);
  });

  it("today (real clock): valid exactly while the signer certificate is", () => {
    const now = Date.now();
    let valid = 0;
    wire.forEach((l, i) => {
      const r = today(l);
      if (now < Date.parse(exp[i].signer_not_after)) {
        expectValid(r, exp[i].signer_cn);
        valid++;
      } else {
        expectInvalid(r, "expired");
      }
    });
    if (now < Date.parse("2028-09-23T00:00:00Z")) assert.equal(valid, 2);
  });

  it("chain to the original (2012) Fedora CA at each message's own timestamp", () => {
    wire.forEach((l, i) => {
      const ts = (parseLossless(l) as JsonObject).timestamp;
      assert.equal(exp[i].chain_badca_original_fedora_ca_at_msg_time, true);
      const r = validateEnvelope(l, { caPem: BAD_CA, at: new Date(Number(ts) * 1000) });
      expectValid(r, exp[i].signer_cn);
    });
  });

  it("do not chain to the fedmsg test CA", () => {
    const v = createValidator({ caPem: CA, at: new Date("2023-03-01T00:00:00Z") });
    wire.forEach((l, i) => {
      assert.equal(exp[i].chain_fedmsg_test_ca, false);
      expectInvalid(v(l), "untrusted");
    });
  });

  it("fail once touched (the datagrepper additions break the signature)", () => {
    const msg = parseLossless(wire[0]) as JsonObject;
    msg.source_name = "datanommer";
    expectInvalid(at2023(canonicalStringify(msg)), "bad_signature");
    const ts = parseLossless(wire[0]) as JsonObject;
    ts.timestamp = JsonNumber.float(Number(ts.timestamp)); // int -> float, as datagrepper stores it
    expectInvalid(at2023(canonicalStringify(ts)), "bad_signature");
  });

  it("routing policy: allowed, refused, and nitpicky on an unlisted topic", () => {
    const l = wire[27];
    const topic = String((parseLossless(l) as JsonObject).topic);
    const base = { caPem: FEDORA_CA, at: FIXTURE_DAY };
    const cn = exp[27].signer_cn;
    expectValid(validateEnvelope(l, { ...base, routingPolicy: { [topic]: [cn] }, routingNitpicky: true }), cn);
    expectInvalid(validateEnvelope(l, { ...base, routingPolicy: { [topic]: ["someone-else"] } }), "routing_policy");
    expectValid(validateEnvelope(l, { ...base, routingPolicy: { "other.topic": ["x"] } }), cn);
    expectInvalid(validateEnvelope(l, { ...base, routingPolicy: { "other.topic": ["x"] }, routingNitpicky: true }), "routing_policy");
  });
});

describe("signEnvelope / validateEnvelope", () => {
  const validator = createValidator({ caPem: CA, crlPem: CRL, at: FIXTURE_DAY });

  it("lays out signature and certificate as fedmsg does (76-column base64 lines, final newline)", () => {
    const { message } = signEnvelope({ topic: "org.fedoraproject.dev.test", msg: { a: 1 } }, APP01_MATERIAL);
    assert.equal(message.crypto, "x509");
    for (const field of [message.signature, message.certificate]) {
      assert.equal(typeof field, "string");
      const ls = String(field).split("\n");
      assert.equal(ls.pop(), "");
      assert.ok(ls.slice(0, -1).every((x) => x.length === 76) && ls[ls.length - 1].length <= 76);
    }
    const pem = Buffer.from(String(message.certificate), "base64").toString("latin1");
    assert.match(pem, /^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END CERTIFICATE-----\n$/);
  });

  it("round-trips envelopes full of unicode, floats and big integers", () => {
    const envelope: JsonObject = {
      topic: "org.fedoraproject.dev.unicode.😀",
      i: 1,
      timestamp: 1700000000,
      msg_id: "2026-00000000-0000-0000-0000-000000000000",
      username: "amqp-bridge",
      msg: {
        text: "café – 中文 – 😀🎉 – \u2028 – \x7f – \"quoted\" \\ /",
        "😀": ["🎉", { "\ue000": "private use", "é": 1 }],
        floats: [JsonNumber.float(1), 1e-7, 0.1, 1379638157.759283, -0.5, JsonNumber.float(1.5e16), 1.5e16],
        big: 12345678901234567890n,
        neg_big: JsonNumber.int("-98765432109876543210"),
        nested: { empty: {}, list: [], nothing: null, yes: true, no: false },
      },
    };
    const signed = signEnvelope(envelope, APP01_MATERIAL);
    for (const piece of ["1.0,", "1e-07", "0.1,", "1379638157.759283", "1.5e+16,15000000000000000]", "12345678901234567890", "-98765432109876543210", "\\ud83d\\ude00", "\\u2028", "\\u007f"]) {
      assert.ok(signed.body.includes(piece), piece);
    }
    assert.match(signed.body, /^[\x20-\x7e]*$/);
    expectValid(validator(signed.body), APP01);
    expectValid(validator(signed.message), APP01);
    // Re-parsed and re-serialised, the body is unchanged (lossless parse).
    assert.equal(canonicalStringify(parseLossless(signed.body)), signed.body);
    // Tamper with one float's representation: 1.0 -> 1 changes the signed bytes.
    expectInvalid(validator(signed.body.replace('"floats":[1.0,', '"floats":[1,')), "bad_signature");
  });

  it("round-trips a Python-written body (float tokens kept as written)", () => {
    const python = '{"i": 3, "msg": {"f": [1.0, 1e-07, 0.1, 1379638157.759283], "n": 12345678901234567890, "s": "\\ud83d\\ude00 caf\\u00e9"}, "timestamp": 1408799776.0, "topic": "t"}';
    const signed = signEnvelope(parseLossless(python) as JsonObject, APP01_MATERIAL);
    assert.ok(signed.body.includes('"f":[1.0,1e-07,0.1,1379638157.759283],"n":12345678901234567890'));
    assert.ok(signed.body.includes('"timestamp":1408799776.0'));
    expectValid(validator(signed.body), APP01);
  });

  it("loadSigner reads <ssldir>/<certname>.key/.crt, or explicit files", () => {
    const bySsldir = loadSigner({ ssldir: KEYS, certname: APP01 });
    assert.equal(bySsldir.cn, APP01);
    expectValid(validator(bySsldir.sign({ topic: "x", msg: {} }).body), APP01);
    const byFiles = loadSigner({
      keyFile: join(FIX, "fedmsg-migration-tools/fixtures/fedmsg.key"),
      certFile: join(FIX, "fedmsg-migration-tools/fixtures/fedmsg.crt"),
    });
    assert.equal(byFiles.cn, "fedmsg");
  });

  it("refuses a key that does not belong to the certificate", () => {
    assert.throws(
      () => createSigner({ keyPem: APP01_MATERIAL.keyPem, certPem: MIGRATION_TOOLS_MATERIAL.certPem }),
      /does not match/,
    );
  });

  it("re-signing replaces an old signature instead of signing over it", () => {
    const s1 = signEnvelope({ topic: "x", msg: { a: 1 } }, MIGRATION_TOOLS_MATERIAL);
    const s2 = signEnvelope(s1.message, APP01_MATERIAL);
    expectValid(validator(s2.body), APP01);
  });

  it("reports malformed and unsupported messages with their own reasons", () => {
    const good = signEnvelope({ topic: "x", msg: {} }, APP01_MATERIAL).message;
    expectInvalid(validator("not json"), "bad_json");
    expectInvalid(validator("[1,2]"), "bad_json");
    expectInvalid(validator('{"topic":"x"}'), "no_signature");
    const { certificate: _dropped, ...noCertificate } = good;
    expectInvalid(validator(canonicalStringify({ ...noCertificate, crypto: "x509" })), "no_signature");
    expectInvalid(validator(canonicalStringify({ ...good, crypto: "gpg" })), "unsupported_crypto");
    expectInvalid(validator('{"topic":"x","signature":"abc"}'), "unsupported_crypto");
    expectInvalid(validator(canonicalStringify({ ...good, certificate: "bm90IGEgY2VydA==\n" })), "bad_certificate");
    expectInvalid(validator(canonicalStringify({ ...good, certificate: 5 })), "bad_certificate");
    expectInvalid(validator(canonicalStringify({ ...good, signature: "thisisnotmysignature" })), "bad_signature");
    expectInvalid(validator({ ...good, msg: new Date(0) as never }), "bad_json"); // not serialisable
    const at = new Date("2023-01-01T00:00:00Z"); // before ca.crt, the signer and crl.pem were issued
    expectInvalid(createValidator({ caPem: CA, at })(canonicalStringify(good)), "not_yet_valid");
    // With the CRL, revocation is checked first (as OpenSSL does): the CRL is not yet valid.
    expectInvalid(createValidator({ caPem: CA, crlPem: CRL, at })(canonicalStringify(good)), "bad_crl");
    for (const reason of ["bad_json", "no_signature", "bad_signature", "routing_policy", "revoked", "expired"]) {
      assert.ok(INVALID_REASONS.includes(reason as never));
    }
  });

  it("rejects a configuration without a CA or with an unreadable CRL", () => {
    assert.throws(() => createValidator({ caPem: "nothing here" }), /no PEM certificate/);
    assert.throws(() => createValidator({ caPem: CA, crlPem: "nothing" }), /no PEM CRL/);
  });
});

const opensslProbe = spawnSync("openssl", ["version"], { encoding: "utf8" });
const hasOpenssl = !opensslProbe.error && opensslProbe.status === 0;

describe("interoperability with the openssl CLI", () => {
  const dir = mkdtempSync(join(tmpdir(), "fedmsg-crypto-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const skip = hasOpenssl ? false : "openssl CLI not found on PATH: interoperability checks skipped";
  const openssl = (...args: string[]) => spawnSync("openssl", args, { encoding: "utf8" });

  it("openssl dgst -sha1 -verify accepts what signEnvelope made", { skip }, () => {
    const { message, body } = signEnvelope(
      { topic: "org.fedoraproject.dev.interop", msg: { text: "héllo 😀", f: JsonNumber.float(2), big: 12345678901234567890n } },
      APP01_MATERIAL,
    );
    const data = join(dir, "data.json");
    const sig = join(dir, "sig.bin");
    const cert = join(dir, "cert.pem");
    const pub = join(dir, "pub.pem");
    writeFileSync(data, signingInput(message));
    writeFileSync(sig, Buffer.from(String(message.signature), "base64"));
    writeFileSync(cert, Buffer.from(String(message.certificate), "base64"));
    const x = openssl("x509", "-in", cert, "-pubkey", "-noout", "-out", pub);
    assert.equal(x.status, 0, x.stderr);
    const r = openssl("dgst", "-sha1", "-verify", pub, "-signature", sig, data);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Verified OK/);
    // The attached certificate chains for openssl too.
    const ca = join(dir, "ca.crt");
    const crl = join(dir, "crl.pem");
    writeFileSync(ca, CA);
    writeFileSync(crl, CRL);
    const v = openssl("verify", "-CAfile", ca, "-CRLfile", crl, "-crl_check", "-crl_check_all", cert);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    // And validateEnvelope agrees.
    expectValid(validateEnvelope(body, { caPem: CA, crlPem: CRL, at: FIXTURE_DAY }), APP01);
  });

  it("a signature made by openssl dgst -sha1 -sign is byte-identical to signEnvelope's", { skip }, () => {
    const { message } = signEnvelope({ topic: "t", msg: { n: 0.1 } }, APP01_MATERIAL);
    const data = join(dir, "data2.json");
    const key = join(dir, "key.pem");
    const sig = join(dir, "sig2.bin");
    writeFileSync(data, signingInput(message));
    writeFileSync(key, APP01_MATERIAL.keyPem);
    const s = openssl("dgst", "-sha1", "-sign", key, "-out", sig, data);
    assert.equal(s.status, 0, s.stderr);
    const opensslSig = readFileSync(sig);
    assert.deepEqual(opensslSig, Buffer.from(String(message.signature), "base64"));
  });
});
