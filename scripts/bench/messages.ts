// The bench's messages: fitted sample templates, fedmsg envelopes, ZeroMQ frames and what zmq_to_amqp publishes for them.
import { randomUUID } from "node:crypto";
import type { AMQPProperties } from "@cloudamqp/amqp-client";
import { loadSamples } from "../../actors/samples.ts";
import { zmqToAmqp } from "../../schema/convert.ts";

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();
export const PROBE_TOPIC = "org.fedoraproject.bench.probe";

export interface Template {
  topic: string;
  msg: Record<string, unknown>;
}

const PAD_TEXT = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. ";
const ID_PLACEHOLDER = `${new Date().getUTCFullYear()}-${randomUUID()}`; // same length as every real id

export function envelopeOf(t: Template, msgId: string, i: number, msg = t.msg) {
  return { topic: t.topic, msg, msg_id: msgId, timestamp: Math.floor(Date.now() / 1000), i, username: "bench" };
}

const byteLength = (s: string) => encoder.encode(s).byteLength;

/**
 * The fixture's real bodies, each fitted so its whole fedmsg envelope (the ZeroMQ
 * body frame) is `target` bytes: too big → drop the largest top-level keys; too
 * small → a `bench_pad` text field. Deterministic, so every process gets the same.
 */
export function fittedTemplates(target: number): Template[] {
  const out: Template[] = [];
  for (const sample of loadSamples()) {
    const msg = structuredClone(sample.msg) as Record<string, unknown>;
    const size = () => byteLength(JSON.stringify(envelopeOf({ topic: sample.topic, msg }, ID_PLACEHOLDER, 100_000)));
    while (size() > target - 40 && Object.keys(msg).length > 1) {
      let largest = "";
      let largestSize = -1;
      for (const [k, v] of Object.entries(msg)) {
        const s = JSON.stringify(v ?? null).length;
        if (s > largestSize) [largest, largestSize] = [k, s];
      }
      delete msg[largest];
    }
    msg.bench_pad = "";
    const room = target - size();
    if (room < 0) continue;
    msg.bench_pad = PAD_TEXT.repeat(Math.ceil(room / PAD_TEXT.length) + 1).slice(0, room);
    out.push({ topic: sample.topic, msg });
  }
  if (out.length === 0) throw new Error(`bench: no sample of test/fixtures/fedmsg-samples.jsonl fits in ${target} bytes`);
  return out;
}

/** N distinct fedmsg messages as ZeroMQ frames [topic, envelope JSON]. */
export function zmqFrames(templates: Template[], n: number, first = 1): [Buffer, Buffer][] {
  const year = new Date().getUTCFullYear();
  const frames: [Buffer, Buffer][] = new Array(n);
  for (let k = 0; k < n; k++) {
    const t = templates[k % templates.length]!;
    frames[k] = [Buffer.from(t.topic), Buffer.from(JSON.stringify(envelopeOf(t, `${year}-${randomUUID()}`, first + k)))];
  }
  return frames;
}

export function probeFrames(): [string, string] {
  return [PROBE_TOPIC, JSON.stringify(envelopeOf({ topic: PROBE_TOPIC, msg: { probe: true } }, `${new Date().getUTCFullYear()}-${randomUUID()}`, 0))];
}

export interface AmqpMessage {
  routingKey: string;
  body: Uint8Array;
  properties: AMQPProperties;
}

/** What zmq_to_amqp publishes for these frames: the baselines send exactly these. */
export function asBridgeOutput(frames: [Buffer, Buffer][], exchange: string): AmqpMessage[] {
  const now = new Date();
  return frames.map((f) => {
    const r = zmqToAmqp(f, { now, exchange });
    if (!r.ok) throw new Error(`bench: a generated message does not convert: ${r.reason} ${r.detail}`);
    return { routingKey: r.routingKey, body: r.body, properties: r.properties as unknown as AMQPProperties };
  });
}
