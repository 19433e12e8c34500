/**
 * schema/: the two conversions of DESIGN.md §2 (one named test per table row),
 * the reference bridge's test vectors, every sample envelope, and the schemas.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Buffer } from "node:buffer";

import {
  addYearPrefix,
  amqpToZmq,
  DROP_REASONS,
  REJECT_REASONS,
  stripYearPrefix,
  topLevelValueSpan,
  zmqToAmqp,
  type AmqpDelivery,
  type AmqpToZmqPublish,
  type AmqpToZmqReject,
  type AmqpToZmqResult,
  type DropReason,
  type EnvelopeValidator,
  type ZmqToAmqpDrop,
  type ZmqToAmqpPublish,
  type ZmqToAmqpResult,
} from "../schema/convert.ts";
import { decodeFedmsgEnvelope, FedmsgEnvelope, isFedmsgEnvelope } from "../schema/fedmsg.ts";
import {
  decodeFedoraMessagingDump,
  decodeFedoraMessagingProperties,
  FedoraMessagingHeaders,
  sentAt,
} from "../schema/fedora-messaging.ts";
import { Schema } from "effect";

// ---------------------------------------------------------------------------
// helpers

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** 2019-07-30T19:12:22.500Z: the half second must not show in sent-at. */
const NOW = new Date(Date.UTC(2019, 6, 30, 19, 12, 22, 500));
const NOW_SENT_AT = "2019-07-30T19:12:22+00:00";
const EXCHANGE = "zmq.topic";
const OPTS = { now: NOW, exchange: EXCHANGE } as const;

function frames(topic: string, body: string): Uint8Array[] {
  return [enc.encode(topic), enc.encode(body)];
}

function json(bytes: Uint8Array): unknown {
  return JSON.parse(dec.decode(bytes));
}

function published(r: ZmqToAmqpResult): ZmqToAmqpPublish {
  if (!r.ok) assert.fail(`expected a publish, got drop ${r.reason}: ${r.detail}`);
  return r;
}

function dropped(r: ZmqToAmqpResult, reason: DropReason): ZmqToAmqpDrop {
  if (r.ok) assert.fail(`expected drop ${reason}, got a publish of ${r.messageId}`);
  assert.equal(r.reason, reason, r.detail);
  assert.ok(r.detail.length > 0);
  return r;
}

function forwarded(r: AmqpToZmqResult): AmqpToZmqPublish {
  if (!r.ok) assert.fail(`expected frames, got reject ${r.reason}: ${r.detail}`);
  return r;
}

function rejected(r: AmqpToZmqResult, reason: AmqpToZmqReject["reason"]): AmqpToZmqReject {
  if (r.ok) assert.fail(`expected reject ${reason}, got frames`);
  assert.equal(r.reason, reason, r.detail);
  assert.ok(r.detail.length > 0);
  return r;
}

function fmHeaders(sent = NOW_SENT_AT) {
  return {
    fedora_messaging_schema: "base.message",
    fedora_messaging_severity: 20,
    "sent-at": sent,
    priority: 0,
  };
}

function delivery(
  routingKey: string,
  body: string | Uint8Array,
  messageId: string | undefined,
  headers?: Record<string, unknown>,
): AmqpDelivery {
  return {
    routingKey,
    body: typeof body === "string" ? enc.encode(body) : body,
    properties: { messageId, headers },
  };
}

function readJsonl(name: string): unknown[] {
  const text = readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as unknown);
}

function readLines(name: string): string[] {
  const text = readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");
  return text.split("\n").filter((l) => l.trim() !== "");
}

function asRecord(u: unknown): Record<string, unknown> {
  assert.ok(typeof u === "object" && u !== null && !Array.isArray(u), "expected a JSON object");
  return u as Record<string, unknown>;
}

// ---------------------------------------------------------------------------

describe("DROP_REASONS / REJECT_REASONS (Prometheus label values: stable)", () => {
  it("lists every ZMQ → AMQP drop reason in check order", () => {
    assert.deepEqual(
      [...DROP_REASONS],
      ["frame_count", "not_utf8", "not_json", "not_object", "loop", "no_msg_id", "no_msg", "msg_not_object", "too_long", "bad_signature"],
    );
  });
  it("lists every AMQP → ZMQ reject reason", () => {
    assert.deepEqual([...REJECT_REASONS], ["no_message_id", "not_utf8", "not_json", "not_object"]);
  });
});

describe("ZMQ → AMQP (DESIGN.md §2 table, in order)", () => {
  describe("row: not exactly 2 frames, not UTF-8, not JSON, JSON but not an object → dropped", () => {
    const good = '{"msg": {"a": 1}, "msg_id": "2019-x"}';

    it("not exactly 2 frames: 0, 1 and 3 frames → frame_count", () => {
      assert.match(dropped(zmqToAmqp([], OPTS), "frame_count").detail, /got 0/);
      assert.match(dropped(zmqToAmqp([enc.encode("t")], OPTS), "frame_count").detail, /got 1/);
      assert.match(dropped(zmqToAmqp([...frames("t", good), enc.encode("x")], OPTS), "frame_count").detail, /got 3/);
    });

    it("not exactly 2 frames is checked before UTF-8", () => {
      dropped(zmqToAmqp([new Uint8Array([0xff]), new Uint8Array([0xff]), new Uint8Array([0xff])], OPTS), "frame_count");
    });

    it("not UTF-8: invalid byte, overlong, encoded surrogate, truncated sequence in the body → not_utf8", () => {
      const bad = [
        [0x7b, 0xff, 0x7d],
        [0x7b, 0xc0, 0x80, 0x7d],
        [0x7b, 0xed, 0xa0, 0x80, 0x7d],
        [0x7b, 0xe6, 0xbc],
      ];
      for (const bytes of bad) {
        dropped(zmqToAmqp([enc.encode("t"), new Uint8Array(bytes)], OPTS), "not_utf8");
      }
    });

    it("not UTF-8: topic frame → not_utf8", () => {
      const r = dropped(zmqToAmqp([new Uint8Array([0x61, 0xfe]), enc.encode(good)], OPTS), "not_utf8");
      assert.match(r.detail, /topic frame/);
    });

    it("not UTF-8 is checked before JSON", () => {
      dropped(zmqToAmqp([enc.encode("t"), new Uint8Array([0x7b, 0xff])], OPTS), "not_utf8");
    });

    it("not JSON: '{', '', text, trailing garbage, BOM before the object → not_json", () => {
      for (const body of ["{", "", "hello", '{"msg": {}} x', "\ufeff" + good]) {
        dropped(zmqToAmqp(frames("t", body), OPTS), "not_json");
      }
    });

    it("JSON but not an object: number, string, true, null, array → not_object", () => {
      for (const body of ["42", '"str"', "true", "null", "[]", `[${good}]`]) {
        const r = dropped(zmqToAmqp(frames("t", body), OPTS), "not_object");
        assert.match(r.detail, /expected an object/);
      }
    });
  });

  describe('row: username == "amqp-bridge" → dropped (loop prevention)', () => {
    it("drops the bridge's own output", () => {
      const body = '{"topic": "t", "msg": {"a": 1}, "msg_id": "2019-x", "i": 1, "username": "amqp-bridge"}';
      const r = dropped(zmqToAmqp(frames("t", body), OPTS), "loop");
      assert.match(r.detail, /2019-x/);
    });
    it("loop is checked before msg_id and msg", () => {
      dropped(zmqToAmqp(frames("t", '{"username": "amqp-bridge"}'), OPTS), "loop");
    });
    it("the exact username only (case and other users publish)", () => {
      published(zmqToAmqp(frames("t", '{"username": "AMQP-bridge", "msg": {}, "msg_id": "m"}'), OPTS));
      published(zmqToAmqp(frames("t", '{"username": "amqp-bridge2", "msg": {}, "msg_id": "m"}'), OPTS));
    });
  });

  describe("row: no username and no msg_id / username but no msg_id → dropped", () => {
    it("no username and no msg_id → no_msg_id", () => {
      const r = dropped(zmqToAmqp(frames("hi", '{"msg": {"a": 1}}'), OPTS), "no_msg_id");
      assert.match(r.detail, /no msg_id/);
    });
    it("username but no msg_id → no_msg_id (the reference crashed here)", () => {
      dropped(zmqToAmqp(frames("hi", '{"username": "bob", "msg": {"a": 1}}'), OPTS), "no_msg_id");
    });
    it("msg_id null, number, empty string → no_msg_id", () => {
      for (const id of ["null", "42", '""', "{}"]) {
        dropped(zmqToAmqp(frames("hi", `{"username": "bob", "msg": {}, "msg_id": ${id}}`), OPTS), "no_msg_id");
      }
    });
    it("no username but a msg_id → published (messages not from fedmsg)", () => {
      assert.equal(published(zmqToAmqp(frames("hi", '{"msg": {}, "msg_id": "m1"}'), OPTS)).messageId, "m1");
    });
    it("no_msg_id is checked before no_msg", () => {
      dropped(zmqToAmqp(frames("hi", '{"username": "bob"}'), OPTS), "no_msg_id");
    });
  });

  describe("row: no msg → dropped", () => {
    it('no "msg" key → no_msg', () => {
      const r = dropped(zmqToAmqp(frames("hi", '{"username": "test", "msg_id": "abc"}'), OPTS), "no_msg");
      assert.match(r.detail, /abc/);
    });
    it('"msg": null is present (not "no msg"): published as {}', () => {
      assert.equal(dec.decode(published(zmqToAmqp(frames("hi", '{"msg": null, "msg_id": "a"}'), OPTS)).body), "{}");
    });
    it("a non-empty non-object msg → msg_not_object (fedora-messaging bodies are objects)", () => {
      for (const msg of ['"test"', "5", "true", "[1]"]) {
        dropped(zmqToAmqp(frames("hi", `{"msg": ${msg}, "msg_id": "a"}`), OPTS), "msg_not_object");
      }
    });
  });

  describe("row: signature validation enabled and it fails → dropped", () => {
    const body = '{"msg": {"a": 1}, "msg_id": "2019-s", "signature": "sig", "certificate": "cert"}';

    it("a failing validator → bad_signature, with its detail", () => {
      const r = dropped(zmqToAmqp(frames("hi", body), { ...OPTS, validate: () => "certificate expired" }), "bad_signature");
      assert.match(r.detail, /certificate expired/);
      assert.match(r.detail, /2019-s/);
    });
    it("a throwing validator → bad_signature", () => {
      const validate: EnvelopeValidator = () => {
        throw new Error("boom");
      };
      assert.match(dropped(zmqToAmqp(frames("hi", body), { ...OPTS, validate }), "bad_signature").detail, /boom/);
    });
    it("the validator gets the parsed envelope and the exact body text", () => {
      let seen: [Readonly<Record<string, unknown>>, string] | undefined;
      const r = zmqToAmqp(frames("hi", body), {
        ...OPTS,
        validate: (envelope, raw) => {
          seen = [envelope, raw];
          return undefined;
        },
      });
      assert.equal(published(r).messageId, "2019-s");
      assert.ok(seen);
      assert.deepEqual(seen[0], JSON.parse(body));
      assert.equal(seen[1], body);
    });
    it("validation runs after the cheaper checks (not called for a loop or a missing msg)", () => {
      let calls = 0;
      const validate: EnvelopeValidator = () => {
        calls++;
        return "bad";
      };
      dropped(zmqToAmqp(frames("hi", '{"username": "amqp-bridge", "msg": {}, "msg_id": "a"}'), { ...OPTS, validate }), "loop");
      dropped(zmqToAmqp(frames("hi", '{"msg_id": "a"}'), { ...OPTS, validate }), "no_msg");
      assert.equal(calls, 0);
    });
    it("without a validator, signatures are not checked", () => {
      published(zmqToAmqp(frames("hi", body), OPTS));
    });
  });

  describe("row: otherwise → published", () => {
    it("body = msg, message_id = msg_id as is, headers, routing key = topic frame, exchange", () => {
      const body =
        '{"topic": "org.fedoraproject.prod.bodhi.update.comment", "msg": {"comment": {"text": "ok"}, "n": [1, 2.5, null, true]},' +
        ' "msg_id": "2019-3c5f7d35-1d2c-4a57-9dd1-61c5e2b1c5aa", "timestamp": 1564513942, "i": 7, "username": "bodhi", "headers": {"x": 1}}';
      const r = published(zmqToAmqp(frames("org.fedoraproject.prod.bodhi.update.comment", body), OPTS));
      assert.deepEqual(r, {
        ok: true,
        exchange: EXCHANGE,
        routingKey: "org.fedoraproject.prod.bodhi.update.comment",
        body: r.body,
        properties: {
          contentType: "application/json",
          contentEncoding: "utf-8",
          deliveryMode: 2,
          messageId: "2019-3c5f7d35-1d2c-4a57-9dd1-61c5e2b1c5aa",
          priority: 0,
          headers: { x: 1, ...fmHeaders() },
        },
        messageId: "2019-3c5f7d35-1d2c-4a57-9dd1-61c5e2b1c5aa",
        topic: "org.fedoraproject.prod.bodhi.update.comment",
        msgId: "2019-3c5f7d35-1d2c-4a57-9dd1-61c5e2b1c5aa",
      });
      assert.ok(r.body instanceof Uint8Array);
      assert.equal(dec.decode(r.body), '{"comment": {"text": "ok"}, "n": [1, 2.5, null, true]}');
    });

    it("body = {} when msg is empty (Python falsy: null, false, 0, '', [], {})", () => {
      for (const msg of ["null", "false", "0", '""', "[]", "{}", "{ }"]) {
        const r = published(zmqToAmqp(frames("hi", `{"msg": ${msg}, "msg_id": "e"}`), OPTS));
        assert.equal(dec.decode(r.body), "{}", `msg ${msg}`);
      }
    });

    it("message_id keeps the year prefix (no prefix is added or removed)", () => {
      assert.equal(published(zmqToAmqp(frames("hi", '{"msg": {}, "msg_id": "2013-abc"}'), OPTS)).messageId, "2013-abc");
      assert.equal(published(zmqToAmqp(frames("hi", '{"msg": {}, "msg_id": "abc"}'), OPTS)).messageId, "abc");
    });

    it("routing key = the topic frame, not the envelope's topic", () => {
      const r = published(zmqToAmqp(frames("frame.topic", '{"topic": "envelope.topic", "msg": {}, "msg_id": "a"}'), OPTS));
      assert.equal(r.routingKey, "frame.topic");
      assert.equal(r.topic, "frame.topic");
    });

    it("exchange comes from the options", () => {
      assert.equal(published(zmqToAmqp(frames("hi", '{"msg": {}, "msg_id": "a"}'), { ...OPTS, exchange: "other" })).exchange, "other");
    });

    it("sent-at = bridge time, UTC, seconds, +00:00", () => {
      const later = new Date(Date.UTC(2031, 0, 2, 3, 4, 5, 999));
      const r = published(zmqToAmqp(frames("hi", '{"msg": {}, "msg_id": "a"}'), { now: later, exchange: EXCHANGE }));
      assert.equal(r.properties.headers["sent-at"], "2031-01-02T03:04:05+00:00");
      const again = published(zmqToAmqp(frames("hi", '{"msg": {}, "msg_id": "a"}'), OPTS));
      assert.equal(again.properties.headers["sent-at"], NOW_SENT_AT);
    });

    it("accepts zeromq's Buffers, and the body does not alias the input frame", () => {
      const body = Buffer.from('{"msg": {"k": "v"}, "msg_id": "b"}');
      const r = published(zmqToAmqp([Buffer.from("hi"), body], OPTS));
      assert.equal(dec.decode(r.body), '{"k": "v"}');
      body.fill(0x20);
      assert.equal(dec.decode(r.body), '{"k": "v"}');
    });

    it("topic or msg_id over 255 bytes (AMQP shortstr) → too_long", () => {
      dropped(zmqToAmqp(frames("t".repeat(256), '{"msg": {}, "msg_id": "a"}'), OPTS), "too_long");
      dropped(zmqToAmqp(frames("hi", `{"msg": {}, "msg_id": "${"é".repeat(128)}"}`), OPTS), "too_long");
      assert.equal(published(zmqToAmqp(frames("t".repeat(255), `{"msg": {}, "msg_id": "${"m".repeat(255)}"}`), OPTS)).routingKey.length, 255);
    });

    it("the result's properties satisfy the fedora-messaging properties schema", () => {
      const r = published(zmqToAmqp(frames("hi", '{"msg": {}, "msg_id": "a", "headers": {"fedora_messaging_user_bob": true}}'), OPTS));
      const decoded = decodeFedoraMessagingProperties(r.properties);
      assert.equal(decoded._tag, "Success", String(decoded._tag === "Failure" ? decoded.failure : ""));
    });
  });

  describe("body bytes: msg exactly as the publisher sent it", () => {
    it("integers beyond 2^53 and 1.0 survive byte for byte", () => {
      const msg = '{"big": 12345678901234567890, "float": 1.0, "exp": 1e400}';
      const r = published(zmqToAmqp(frames("hi", `{"msg_id": "a", "msg": ${msg}}`), OPTS));
      assert.equal(dec.decode(r.body), msg);
    });
    it("the last of duplicate top-level msg keys wins (as JSON.parse)", () => {
      const r = published(zmqToAmqp(frames("hi", '{"msg": {"first": 1}, "msg_id": "a", "msg": {"second": 2}}'), OPTS));
      assert.equal(dec.decode(r.body), '{"second": 2}');
    });
    it("nested msg keys, quotes, backslashes and braces in strings do not confuse the scan", () => {
      const body =
        '{ "x" : {"msg": {"no": 1}}, "s": "\\"msg\\": {}\\\\", "a": ["}", "{", "]"], "msg" :\n {"k": "\\\\\\"}{", "msg": [1, {"msg": 2}]} , "msg_id": "a", "t": true}';
      const r = published(zmqToAmqp(frames("hi", body), OPTS));
      assert.equal(dec.decode(r.body), '{"k": "\\\\\\"}{", "msg": [1, {"msg": 2}]}');
      assert.deepEqual(json(r.body), (JSON.parse(body) as { msg: unknown }).msg);
    });
    it("an escaped key spelling msg is the msg key", () => {
      const r = published(zmqToAmqp(frames("hi", '{"\\u006dsg": {"k": 1}, "msg_id": "a"}'), OPTS));
      assert.equal(dec.decode(r.body), '{"k": 1}');
    });
    it("topLevelValueSpan agrees with JSON.parse on generated objects", () => {
      // A small deterministic generator of awkward JSON (no randomness between runs).
      let seed = 42;
      const rnd = (n: number) => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed % n;
      };
      // Some longer than 32 bytes, where the scan switches to indexOf: escaped quotes and backslash runs there too.
      const long = ["a".repeat(40), "\\".repeat(21) + "\"" + "b".repeat(33), "pad ".repeat(10) + "\"}" + "z".repeat(30) + "\\", "é".repeat(30) + "\\\""];
      const strings = ["msg", "", "\"", "\\", "}", "{", "]", "[", ",", ":", "é漢🎉", "\\\"}", "msg\\", ...long];
      const value = (depth: number): unknown => {
        switch (depth > 3 ? rnd(4) : rnd(7)) {
          case 0: return strings[rnd(strings.length)];
          case 1: return rnd(2) === 0 ? -rnd(1000) / 7 : rnd(1e6);
          case 2: return [true, false, null][rnd(3)];
          case 3: return strings[rnd(strings.length)] + strings[rnd(strings.length)];
          case 4: return Array.from({ length: rnd(4) }, () => value(depth + 1));
          default: {
            const o: Record<string, unknown> = {};
            for (let k = rnd(5); k > 0; k--) o[rnd(3) === 0 ? "msg" : strings[rnd(strings.length)]!] = value(depth + 1);
            return o;
          }
        }
      };
      const key = enc.encode("msg");
      for (let n = 0; n < 500; n++) {
        const top: Record<string, unknown> = {};
        for (let k = rnd(6); k > 0; k--) top[strings[rnd(strings.length)]!] = value(1);
        if (rnd(4) !== 0) top.msg = value(1);
        const pretty = rnd(2) === 0;
        const text = JSON.stringify(top, null, pretty ? 1 : undefined);
        const bytes = enc.encode(text);
        const span = topLevelValueSpan(bytes, key);
        if (!("msg" in top)) {
          assert.equal(span, undefined, text);
          continue;
        }
        assert.ok(span, text);
        assert.deepEqual(JSON.parse(dec.decode(bytes.subarray(span[0], span[1]))), (JSON.parse(text) as { msg: unknown }).msg, text);
      }
    });
  });
});

describe("AMQP → ZMQ (DESIGN.md §2)", () => {
  const ID = "3c5f7d35-1d2c-4a57-9dd1-61c5e2b1c5aa";

  it("frames [routing key, JSON {topic, msg, timestamp, msg_id, i, username}] in that key order", () => {
    const r = forwarded(amqpToZmq(delivery("my.topic", '{"my":"message"}', ID), { now: NOW, counter: 1 }));
    assert.equal(r.frames.length, 2);
    assert.equal(r.frames[0], "my.topic");
    assert.equal(
      r.frames[1],
      `{"topic":"my.topic","msg":{"my":"message"},"timestamp":1564513942,"msg_id":"2019-${ID}","i":1,"username":"amqp-bridge"}`,
    );
    assert.deepEqual(r.envelope, {
      topic: "my.topic",
      msg: { my: "message" },
      timestamp: 1564513942,
      msg_id: `2019-${ID}`,
      i: 1,
      username: "amqp-bridge",
    });
    assert.deepEqual(Object.keys(r.envelope), ["topic", "msg", "timestamp", "msg_id", "i", "username"]);
    // For a compact body the frame is exactly JSON.stringify(envelope).
    assert.equal(r.frames[1], JSON.stringify(r.envelope));
  });

  it("timestamp = now in whole seconds (floored), i = the counter", () => {
    const r = forwarded(amqpToZmq(delivery("t", "{}", ID), { now: new Date(1_700_000_000_999), counter: 987654 }));
    assert.equal(r.envelope.timestamp, 1_700_000_000);
    assert.equal(r.envelope.i, 987654);
  });

  it("msg_id = message_id prefixed with the current UTC year and '-'", () => {
    // 2019-12-31T23:30:00-02:00 is already 2020 in UTC.
    const r = forwarded(amqpToZmq(delivery("t", "{}", "abc"), { now: new Date("2019-12-31T23:30:00-02:00"), counter: 1 }));
    assert.equal(r.envelope.msg_id, "2020-abc");
  });

  it("msg_id: no prefix when message_id already starts with four digits and '-'", () => {
    const r = forwarded(amqpToZmq(delivery("t", "{}", `2018-${ID}`), { now: NOW, counter: 1 }));
    assert.equal(r.envelope.msg_id, `2018-${ID}`);
    // Not four digits and '-': prefixed.
    assert.equal(forwarded(amqpToZmq(delivery("t", "{}", "201-x"), { now: NOW, counter: 1 })).envelope.msg_id, "2019-201-x");
    assert.equal(forwarded(amqpToZmq(delivery("t", "{}", "20190-x"), { now: NOW, counter: 1 })).envelope.msg_id, "2019-20190-x");
  });

  it("the AMQP headers travel too (as headers), so nothing is lost", () => {
    const headers = { ...fmHeaders("2019-07-30T19:12:00+00:00"), fedora_messaging_user_bob: true, n: { deep: [1, "x"] } };
    const r = forwarded(amqpToZmq(delivery("t", '{"a":1}', ID, headers), { now: NOW, counter: 2 }));
    assert.deepEqual(r.envelope.headers, headers);
    assert.deepEqual(Object.keys(r.envelope), ["topic", "msg", "timestamp", "msg_id", "i", "username", "headers"]);
    assert.deepEqual(JSON.parse(r.frames[1]), r.envelope);
    assert.equal(r.frames[1], JSON.stringify(r.envelope));
  });

  it("no message_id → rejected (no_message_id), for undefined and empty", () => {
    rejected(amqpToZmq(delivery("t", "{}", undefined), { now: NOW, counter: 1 }), "no_message_id");
    rejected(amqpToZmq(delivery("t", "{}", ""), { now: NOW, counter: 1 }), "no_message_id");
  });

  it("a body that is not a JSON object → rejected: not_utf8, not_json, not_object", () => {
    const o = { now: NOW, counter: 1 };
    rejected(amqpToZmq(delivery("t", new Uint8Array([0x7b, 0xff, 0x7d]), ID), o), "not_utf8");
    rejected(amqpToZmq(delivery("t", "{", ID), o), "not_json");
    rejected(amqpToZmq(delivery("t", "", ID), o), "not_json");
    for (const body of ["[]", '"s"', "1", "null", "true"]) {
      rejected(amqpToZmq(delivery("t", body, ID), o), "not_object");
    }
  });

  it("the body text goes out as received (big integers, spacing)", () => {
    const body = '{"big": 12345678901234567890, "f": 1.0}';
    const r = forwarded(amqpToZmq(delivery("t", body, ID), { now: NOW, counter: 1 }));
    assert.ok(r.frames[1].includes(`"msg":${body},`));
    assert.deepEqual(JSON.parse(r.frames[1]).msg, JSON.parse(body));
  });

  it("unserialisable hand-built headers are rejected, not thrown", () => {
    const r = amqpToZmq(delivery("t", "{}", ID, { n: 1n }), { now: NOW, counter: 1 });
    rejected(r, "not_json");
  });
});

describe("year prefix", () => {
  it("addYearPrefix adds it once, never twice", () => {
    const once = addYearPrefix("abc", NOW);
    assert.equal(once, "2019-abc");
    assert.equal(addYearPrefix(once, NOW), "2019-abc");
    assert.equal(addYearPrefix(once, new Date(Date.UTC(2024, 5, 1))), "2019-abc");
  });
  it("stripYearPrefix removes one leading dddd- only", () => {
    assert.equal(stripYearPrefix("2019-abc"), "abc");
    assert.equal(stripYearPrefix("2019-2019-abc"), "2019-abc");
    assert.equal(stripYearPrefix("abc"), "abc");
    assert.equal(stripYearPrefix("201-abc"), "201-abc");
    assert.equal(stripYearPrefix(addYearPrefix("x-y", NOW)), "x-y");
  });
  it("an AMQP message_id that already has a year is not prefixed again on the way out", () => {
    const r = forwarded(amqpToZmq(delivery("t", "{}", "2019-abc"), { now: NOW, counter: 1 }));
    assert.equal(r.envelope.msg_id, "2019-abc");
  });
});

describe("unicode survives both ways byte-exactly", () => {
  const text = "emoji 🎉𝄞 (non-BMP), CJK 漢字かな한글, accents éü, RTL שלום, NUL-free";
  const msgJson = JSON.stringify({ text, nested: { [text]: [text] } });

  it("ZMQ → AMQP: the body bytes are the publisher's bytes", () => {
    const body = `{"msg":${msgJson},"msg_id":"2019-u","username":"bob"}`;
    const r = published(zmqToAmqp(frames("org.例え.topic", body), OPTS));
    assert.deepEqual(r.body, enc.encode(msgJson));
    assert.equal(r.routingKey, "org.例え.topic");
  });

  it("ZMQ → AMQP: fedmsg's ASCII-escaped form is passed on as sent and decodes to the same text", () => {
    const escaped = JSON.stringify({ text }).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
    const r = published(zmqToAmqp(frames("t", `{"msg":${escaped},"msg_id":"a"}`), OPTS));
    assert.equal(dec.decode(r.body), escaped);
    assert.deepEqual(json(r.body), { text });
  });

  it("AMQP → ZMQ: the frame carries the body's characters unchanged", () => {
    const r = forwarded(amqpToZmq(delivery("t", msgJson, "id"), { now: NOW, counter: 1 }));
    assert.ok(r.frames[1].includes(`"msg":${msgJson}`));
    assert.deepEqual(JSON.parse(r.frames[1]).msg, JSON.parse(msgJson));
  });

  it("ZMQ → AMQP → ZMQ: the msg bytes come back identical", () => {
    const first = published(zmqToAmqp(frames("t", `{"msg":${msgJson},"msg_id":"2019-rt","username":"bob"}`), OPTS));
    const back = forwarded(
      amqpToZmq(delivery(first.routingKey, first.body, first.messageId, first.properties.headers), { now: NOW, counter: 1 }),
    );
    const frameBytes = enc.encode(back.frames[1]);
    const msgBytes = enc.encode(msgJson);
    const at = Buffer.from(frameBytes).indexOf(Buffer.from(msgBytes));
    assert.ok(at > 0);
    assert.equal(back.envelope.msg_id, "2019-rt");
    // And the loop guard drops it if it comes round again.
    dropped(zmqToAmqp([enc.encode(back.frames[0]), frameBytes], OPTS), "loop");
  });
});

describe("headers travel both ways", () => {
  it("ZMQ headers go into the AMQP headers, fedora-messaging headers added", () => {
    const r = published(
      zmqToAmqp(frames("hi", '{"headers": {"oh": "hi", "n": {"a": [1, null]}, "fedora_messaging_user_bob": true}, "msg": {}, "msg_id": "a"}'), OPTS),
    );
    assert.deepEqual(r.properties.headers, { oh: "hi", n: { a: [1, null] }, fedora_messaging_user_bob: true, ...fmHeaders() });
  });
  it("the bridge's fedora-messaging headers replace same-named envelope headers (sent-at = bridge time)", () => {
    const r = published(
      zmqToAmqp(
        frames("hi", '{"headers": {"sent-at": "2001-01-01T00:00:00+00:00", "fedora_messaging_severity": 40, "priority": 9, "fedora_messaging_schema": "x"}, "msg": {}, "msg_id": "a"}'),
        OPTS,
      ),
    );
    assert.deepEqual(r.properties.headers, fmHeaders());
  });
  it("blank or non-object envelope headers give just the fedora-messaging headers", () => {
    for (const h of ["{}", "null", "[1]", '"x"']) {
      const r = published(zmqToAmqp(frames("hi", `{"headers": ${h}, "msg": {}, "msg_id": "a"}`), OPTS));
      assert.deepEqual(r.properties.headers, fmHeaders(), h);
    }
  });
  it("the parsed envelope headers are not mutated", () => {
    let envelopeHeaders: unknown;
    zmqToAmqp(frames("hi", '{"headers": {"oh": "hi"}, "msg": {}, "msg_id": "a"}'), {
      ...OPTS,
      validate: (e) => {
        envelopeHeaders = e.headers;
        return undefined;
      },
    });
    assert.deepEqual(envelopeHeaders, { oh: "hi" });
  });
  it("AMQP headers go into the envelope; without AMQP headers the frame has no headers key (as the reference)", () => {
    const withHeaders = forwarded(amqpToZmq(delivery("t", "{}", "i", { a: 1 }), { now: NOW, counter: 1 }));
    assert.deepEqual(JSON.parse(withHeaders.frames[1]).headers, { a: 1 });
    const without = forwarded(amqpToZmq(delivery("t", "{}", "i"), { now: NOW, counter: 1 }));
    assert.equal("headers" in without.envelope, false);
    assert.equal("headers" in JSON.parse(without.frames[1]), false);
  });
});

// ---------------------------------------------------------------------------
// fedmsg-migration-tools test_bridges.py, as written out in bridge-test-vectors.jsonl

interface Vector {
  source: string;
  direction: "zmq->amqp" | "amqp->zmq";
  test: string;
  expected: "publish" | "drop";
  reason?: string;
  config?: Record<string, unknown>;
  zmq_topic_frame?: string;
  zmq_body_frame?: string;
  expected_amqp?: { topic: string; body: unknown; id: string; headers_include?: Record<string, unknown>; headers_note?: string };
  amqp?: { topic: string; body: Record<string, unknown>; id: string | null };
  clock?: number;
  expected_zmq_frames?: [string, string];
  expected_zmq_body_minus_signature_certificate?: Record<string, unknown>;
}

/** The vectors' drop reasons, in words, mapped to ours. Unknown words fail the test. */
const VECTOR_REASONS: Record<string, DropReason | AmqpToZmqReject["reason"]> = {
  'no "msg" key': "no_msg",
  'no "msg_id" (and no "username")': "no_msg_id",
  'username "amqp-bridge" (loop prevention)': "loop",
  "body frame is not JSON": "not_json",
  "AMQP message id is None": "no_message_id",
};

describe("bridge-test-vectors.jsonl (fedmsg-migration-tools test_bridges.py)", () => {
  const vectors = readJsonl("bridge-test-vectors.jsonl") as Vector[];

  it("has all 11 vectors", () => assert.equal(vectors.length, 11));

  for (const v of vectors) {
    it(`${v.direction} ${v.test}: ${v.expected}${v.reason ? ` (${v.reason})` : ""}`, () => {
      if (v.direction === "zmq->amqp") {
        assert.equal(v.config?.validate_signatures, false);
        const r = zmqToAmqp(frames(v.zmq_topic_frame!, v.zmq_body_frame!), OPTS);
        if (v.expected === "drop") {
          const reason = VECTOR_REASONS[v.reason!];
          assert.ok(reason, `no mapping for vector reason ${JSON.stringify(v.reason)}`);
          dropped(r, reason as DropReason);
          return;
        }
        const p = published(r);
        const e = v.expected_amqp!;
        assert.equal(p.routingKey, e.topic);
        assert.equal(p.topic, e.topic);
        assert.deepEqual(json(p.body), e.body);
        assert.equal(p.messageId, e.id);
        assert.equal(p.properties.messageId, e.id);
        const envelopeHeaders = (JSON.parse(v.zmq_body_frame!) as { headers?: Record<string, unknown> }).headers ?? {};
        assert.deepEqual(p.properties.headers, { ...envelopeHeaders, ...fmHeaders() });
        for (const [k, val] of Object.entries(e.headers_include ?? {})) assert.equal(p.properties.headers[k], val);
        return;
      }

      // amqp->zmq. The reference took the timestamp from a mocked time.time()
      // (`clock`) and the year from the real clock; we read one clock, so
      // "<current year>" is the UTC year of `now`.
      const now = v.clock === undefined ? new Date() : new Date(v.clock * 1000);
      const year = String(now.getUTCFullYear());
      const uuid = crypto.randomUUID();
      const amqp = v.amqp!;
      const messageId =
        amqp.id === null ? undefined : amqp.id.replace("<current year>", year).replace(/<uuid4[^>]*>/, uuid);
      const r = amqpToZmq(delivery(amqp.topic, JSON.stringify(amqp.body), messageId), { now, counter: 1 });

      if (v.expected === "drop") {
        const reason = VECTOR_REASONS[v.reason!];
        assert.ok(reason, `no mapping for vector reason ${JSON.stringify(v.reason)}`);
        rejected(r, reason as AmqpToZmqReject["reason"]);
        return;
      }
      const p = forwarded(r);
      const fill = (s: string) => s.replace("<current year>", year).replace("<amqp id>", messageId!);

      if (v.expected_zmq_frames) {
        const [topic, body] = v.expected_zmq_frames;
        assert.equal(p.frames[0], topic);
        const expected = JSON.parse(fill(body)) as Record<string, unknown>;
        assert.deepEqual(JSON.parse(p.frames[1]), expected);
        // Same dict, same key order; compact separators instead of Python's ", " / ": ".
        assert.equal(p.frames[1], JSON.stringify(expected));
      } else if (v.expected_zmq_body_minus_signature_certificate) {
        // Signing is a later step; "crypto": "x509" is what that step adds.
        assert.equal(v.config?.sign_messages, true);
        const { crypto: scheme, ...unsigned } = v.expected_zmq_body_minus_signature_certificate;
        assert.equal(scheme, "x509");
        const expected = JSON.parse(fill(JSON.stringify(unsigned))) as Record<string, unknown>;
        assert.deepEqual(JSON.parse(p.frames[1]), expected);
        assert.deepEqual(Object.keys(p.envelope), Object.keys(expected));
      } else {
        // test_double_year_prefix: already "YYYY-…", no second prefix.
        assert.equal(p.envelope.msg_id, messageId);
        assert.match(p.envelope.msg_id, new RegExp(`^${year}-${uuid}$`));
      }
    });
  }
});

// ---------------------------------------------------------------------------

describe("fedmsg-samples.jsonl: every real envelope converts", () => {
  const lines = readLines("fedmsg-samples.jsonl");

  it("has all 364 samples", () => assert.equal(lines.length, 364));

  const counts = { ok: 0, loop: 0, no_msg_id: 0 };
  lines.forEach((line, index) => {
    const envelope = asRecord(JSON.parse(line));
    const topic = String(envelope.topic);
    const expected: "ok" | "loop" | "no_msg_id" =
      envelope.username === "amqp-bridge" ? "loop" : typeof envelope.msg_id === "string" ? "ok" : "no_msg_id";

    it(`line ${index + 1} ${topic}: ${expected}`, () => {
      const r = zmqToAmqp(frames(topic, line), OPTS);
      counts[expected]++;
      if (expected !== "ok") {
        dropped(r, expected);
        return;
      }
      const p = published(r);
      assert.equal(p.routingKey, topic);
      assert.equal(p.messageId, envelope.msg_id);
      assert.deepEqual(json(p.body), envelope.msg);
      const envelopeHeaders = (envelope.headers ?? {}) as Record<string, unknown>;
      assert.deepEqual(p.properties.headers, { ...envelopeHeaders, ...fmHeaders() });
      assert.equal(decodeFedoraMessagingProperties(p.properties)._tag, "Success");

      // On the wire fedmsg sends sorted keys, ASCII-escaped, no spaces: same result.
      const wire = JSON.stringify(sortKeys(envelope)).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
      const w = published(zmqToAmqp(frames(topic, wire), OPTS));
      assert.deepEqual(json(w.body), envelope.msg);
      assert.equal(w.messageId, envelope.msg_id);

      // And back: the AMQP message goes out to ZeroMQ with the same msg and id.
      const back = forwarded(amqpToZmq(delivery(p.routingKey, p.body, p.messageId, p.properties.headers), { now: NOW, counter: index + 1 }));
      const env = JSON.parse(back.frames[1]) as Record<string, unknown>;
      assert.deepEqual(env.msg, envelope.msg);
      assert.equal(env.msg_id, envelope.msg_id);
      assert.equal(env.topic, topic);
      assert.deepEqual(env.headers, p.properties.headers);
    });
  });

  it("counts: 250 published, 12 loops, 102 without msg_id", () => {
    // Runs after the per-line tests (node:test runs a describe's tests in order).
    assert.deepEqual(counts, { ok: 250, loop: 12, no_msg_id: 102 });
  });
});

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

// ---------------------------------------------------------------------------

describe("schemas", () => {
  it("FedmsgEnvelope accepts every sample and keeps unknown keys", () => {
    for (const line of readLines("fedmsg-samples.jsonl")) {
      const input = JSON.parse(line) as unknown;
      const r = decodeFedmsgEnvelope(input);
      if (r._tag !== "Success") assert.fail(`${line.slice(0, 80)}: ${String(r.failure)}`);
      assert.deepEqual(r.success, input);
      assert.ok(isFedmsgEnvelope(input));
    }
    const r = decodeFedmsgEnvelope({ topic: "t", msg: {}, source_name: "datanommer", source_version: "0.6.5" });
    assert.equal(r._tag, "Success");
    if (r._tag === "Success") assert.equal(r.success.source_name, "datanommer");
  });

  it("FedmsgEnvelope rejects wrong field types", () => {
    for (const bad of [{ topic: 5 }, { msg_id: 1 }, { timestamp: "x" }, { headers: [] }, { username: 3 }, [], "x", null]) {
      assert.equal(Schema.is(FedmsgEnvelope)(bad), false, JSON.stringify(bad));
    }
  });

  it("fedora-messaging dumps: valid and invalid as fedora-messaging's own tests say", () => {
    const valid = [
      '{"body": {"test_key1": "test_value1"}, "headers": {"fedora_messaging_schema": "base.message", "fedora_messaging_severity": 20, "sent-at": "2018-11-18T10:11:41+00:00"}, "id": "273ed91d-b8b5-487a-9576-95b9fbdf3eec", "queue": "test_queue", "topic": "test_topic"}',
      '{"body": {"test_key": "test_value"}, "headers": {"fedora_messaging_schema": "base.message", "fedora_messaging_schema_package": "fedora_messaging", "fedora_messaging_severity": 30}, "id": "test id", "priority": 2, "queue": "test queue", "topic": "test topic"}',
      '{"body": {"test_key": "test_value"}, "id": "test id", "queue": "test queue", "topic": "test topic"}',
      '{"body": {"a": 1}, "headers": {"fedora_messaging_rpm_python-specfile": true, "fedora_messaging_schema": "koji_fedoramessaging.tag.TagV1", "fedora_messaging_severity": 10, "fedora_messaging_user_nforro": true, "priority": 2, "sent-at": "2024-06-20T15:04:24+00:00"}, "id": "0b2addd5-e1b8-4ebe-9e2a-9b1b21a8bbad", "priority": 2, "queue": null, "topic": "org.fedoraproject.prod.buildsys.tag"}',
    ];
    const invalid = [
      '{"body": [], "headers": {"fedora_messaging_schema": "base.message", "fedora_messaging_severity": 21, "sent-at": "2018-11-18T10:11:41+00:00"}, "id": "273ed91d-b8b5-487a-9576-95b9fbdf3eec", "queue": "test_queue", "topic": "test_topic"}',
      '{"body": {"test_key1": "test_value1"}, "headers": {"fedora_messaging_schema": "base.message", "fedora_messaging_severity": 20, "sent-at": "2018-11-18T10:11:41+00:00"}, "queue": "test_queue"}',
      '{"headers": {"fedora_messaging_schema": "base.message", "fedora_messaging_severity": 30}, "id": "test id", "queue": "test queue", "topic": "test topic"}',
      '{"body": {"test_key": "test_value"}, "headers": {"fedora_messaging_schema": "base.message", "fedora_messaging_severity": 41}, "id": "test id", "queue": "test queue", "topic": "test topic"}',
    ];
    for (const l of valid) assert.equal(decodeFedoraMessagingDump(JSON.parse(l))._tag, "Success", l);
    for (const l of invalid) assert.equal(decodeFedoraMessagingDump(JSON.parse(l))._tag, "Failure", l);
  });

  it("fedora-messaging headers: severity 10|20|30|40, sent-at without fractions, extra headers kept", () => {
    const is = Schema.is(FedoraMessagingHeaders);
    for (const s of [10, 20, 30, 40]) assert.ok(is({ fedora_messaging_severity: s }));
    for (const s of [0, 21, 50, "20"]) assert.equal(is({ fedora_messaging_severity: s }), false);
    assert.ok(is({ "sent-at": "2019-07-30T19:12:22+00:00" }));
    assert.ok(is({ "sent-at": "2019-07-30T21:12:22+02:00" }));
    assert.equal(is({ "sent-at": "2019-07-30T19:12:22.123456+00:00" }), false);
    assert.equal(is({ "sent-at": "2019-07-30T19:12:22Z" }), false);
    assert.equal(is({ priority: -1 }), false);
    assert.ok(is({ fedora_messaging_user_bob: true, anything: [1] }));
  });

  it("sentAt gives exactly 2019-07-30T19:12:22+00:00", () => {
    assert.equal(sentAt(new Date(Date.UTC(2019, 6, 30, 19, 12, 22))), "2019-07-30T19:12:22+00:00");
    assert.equal(sentAt(new Date(Date.UTC(2019, 6, 30, 19, 12, 22, 999))), "2019-07-30T19:12:22+00:00");
    assert.equal(sentAt(new Date("2020-01-01T01:30:00+02:00")), "2019-12-31T23:30:00+00:00");
  });
});
