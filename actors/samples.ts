// Traffic for the demo: a fedmsg publisher replaying real Fedora messages on a
// ZeroMQ PUB, and a native fedora-messaging publisher on an exchange. Both at a
// steady rate, with fresh ids, so every message can be followed end to end.
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { fromCallback, type AnyActorRef } from "xstate";
import type { AmqpChannel, AmqpConnection, Transports, ZmqPublisher } from "./transport.ts";
import { sentAt } from "../schema/fedora-messaging.ts";
import type { Logger } from "../lib/log.ts";

export const SAMPLES_FILE = fileURLToPath(new URL("../test/fixtures/fedmsg-samples.jsonl", import.meta.url));

export type SamplePublisherInput =
  | { kind: "fedmsg_sample"; id: string; endpoint: string; rate: number; logger: Logger; samplesFile?: string }
  | { kind: "amqp_sample"; id: string; connectionRef: AnyActorRef; exchange: string; rate: number; logger: Logger };

interface Sample {
  topic: string;
  msg: unknown;
}

/** Real messages that a bridge forwards (they have a body and are not the bridge's own). */
export function loadSamples(file = SAMPLES_FILE): Sample[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as { topic?: string; msg?: unknown; username?: string })
    .filter((e) => typeof e.topic === "string" && e.msg && typeof e.msg === "object" && e.username !== "amqp-bridge")
    .map((e) => ({ topic: e.topic!, msg: e.msg }));
}

export function samplePublisherLogic(transports: Transports) {
  return fromCallback<{ type: "STOP" }, SamplePublisherInput>(({ input }) => {
    let n = 0;
    let stopped = false;
    let tick: () => void;
    const cleanup: (() => void)[] = [];

    if (input.kind === "fedmsg_sample") {
      const samples = loadSamples(input.samplesFile);
      let pub: ZmqPublisher | undefined;
      transports.zmq.publish(input.endpoint, true).then(
        (p) => (stopped ? p.close() : (pub = p)),
        (e: Error) => input.logger.log("error", input.id, `cannot bind ${input.endpoint}: ${e.message}`),
      );
      cleanup.push(() => pub?.close());
      tick = () => {
        if (!pub) return;
        const sample = samples[n % samples.length]!;
        n++;
        const envelope = {
          topic: sample.topic,
          msg: sample.msg,
          msg_id: `${new Date().getUTCFullYear()}-${randomUUID()}`,
          timestamp: Math.floor(Date.now() / 1000),
          i: n,
          username: "demo",
        };
        void pub.send([sample.topic, JSON.stringify(envelope)]).catch(() => {});
      };
    } else {
      let channel: AmqpChannel | undefined;
      let opening = false;
      const open = (connection: AmqpConnection) => {
        opening = true;
        connection.openChannel().then(
          (c) => {
            opening = false;
            if (stopped) return void c.close();
            channel = c;
            c.onClose = () => (channel = undefined);
          },
          () => (opening = false),
        );
      };
      cleanup.push(() => void channel?.close());
      tick = () => {
        const connection = (input.connectionRef.getSnapshot().context as { connection?: AmqpConnection }).connection;
        if (!channel && connection && !connection.closed && !opening) open(connection);
        if (!channel) return;
        n++;
        const body = { demo: true, n, text: `native AMQP message ${n}`, sent: new Date().toISOString() };
        const now = new Date();
        void channel
          .publish(input.exchange, "org.fedoraproject.demo.native.sample", new TextEncoder().encode(JSON.stringify(body)), {
            contentType: "application/json",
            contentEncoding: "utf-8",
            deliveryMode: 2,
            messageId: randomUUID(),
            priority: 0,
            headers: { fedora_messaging_schema: "base.message", fedora_messaging_severity: 20, "sent-at": sentAt(now), priority: 0 },
          }, false)
          .catch(() => {});
      };
    }

    const timer = setInterval(() => tick(), Math.max(1, Math.round(1000 / input.rate)));
    return () => {
      stopped = true;
      clearInterval(timer);
      cleanup.forEach((f) => f());
    };
  });
}
