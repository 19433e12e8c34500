// The context shared by the phases (the Bench record) and the bridges' actor contexts the phases read.
import type { AMQPChannel, AMQPClient } from "@cloudamqp/amqp-client";
import type { BridgeStats } from "../../lib/stats.ts";
import type { PublishBuffer } from "../../lib/publish-buffer.ts";
import type { AmqpMessage, Template } from "./messages.ts";

export interface Bench {
  n: number;
  window: number;
  prefetch: number;
  messageBytes: number;
  templates: Template[];
  /** The bridge's output for N messages (for the baselines and the pre-fills). */
  amqpMessages: AmqpMessage[];
  ch: AMQPChannel;
  client: AMQPClient;
  log: (line: string) => void;
}

export type ZmqToAmqpContext = { stats: BridgeStats; buffer: PublishBuffer };
export type AmqpToZmqContext = { stats: BridgeStats };
