// Buffered bodies share blocks (lib/byte-slab.ts); a message set aside gets its own.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ByteSlab, ownBytes } from "../lib/byte-slab.ts";
import { PublishBuffer } from "../lib/publish-buffer.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

describe("ByteSlab", () => {
  it("copies small byte strings side by side into one block, never aliasing the source", () => {
    const { copy } = new ByteSlab();
    const source = Buffer.from('{"a": 1}{"b": 2}');
    const a = copy(source.subarray(0, 8));
    const b = copy(source.subarray(8));
    source.fill(0x20);
    assert.equal(dec.decode(a), '{"a": 1}');
    assert.equal(dec.decode(b), '{"b": 2}');
    assert.equal(a.buffer, b.buffer, "one shared block");
    assert.equal(b.byteOffset, a.byteOffset + a.byteLength);
  });

  it("starts a new block when one is full, and gives large bodies a buffer of their own", () => {
    const { copy } = new ByteSlab();
    const kb = new Uint8Array(1024).fill(0x61);
    const views = Array.from({ length: 300 }, () => copy(kb)); // 300 KB > one 256 KB block
    assert.equal(new Set(views.map((v) => v.buffer)).size, 2);
    assert.ok(views.every((v) => v.byteLength === 1024 && v.every((c) => c === 0x61)));
    const large = copy(new Uint8Array(64 * 1024).fill(0x62));
    assert.equal(large.byteOffset, 0);
    assert.equal(large.buffer.byteLength, 64 * 1024);
  });

  it("ownBytes copies a view out of its block, and keeps a whole buffer as is", () => {
    const { copy } = new ByteSlab();
    const view = copy(enc.encode("hello"));
    const own = ownBytes(view);
    assert.notEqual(own.buffer, view.buffer);
    assert.equal(own.buffer.byteLength, 5);
    assert.equal(dec.decode(own), "hello");
    const whole = enc.encode("whole");
    assert.equal(ownBytes(whole), whole);
  });

  it("PublishBuffer.extract hands back messages that no longer pin a shared block", () => {
    const { copy } = new ByteSlab();
    const buffer = new PublishBuffer({ maxMessages: 10, maxBytes: 1e9 });
    const message = (topic: string) => ({ exchange: "zmq.topic", routingKey: topic, body: copy(enc.encode(`{"t": "${topic}"}`)), properties: { messageId: topic }, receivedAt: 0 });
    buffer.push(message("kept"));
    buffer.push(message("refused"));
    const [refused] = buffer.extract((m) => m.routingKey === "refused");
    assert.equal(dec.decode(refused!.body), '{"t": "refused"}');
    assert.equal(refused!.body.byteOffset, 0);
    assert.equal(refused!.body.buffer.byteLength, refused!.body.byteLength);
    assert.equal(buffer.take()!.routingKey, "kept");
  });
});
