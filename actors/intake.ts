// zmq_to_amqp's intake, called by the SUB socket for every message: convert,
// then buffer — or, under the spool policy while the broker is away or the
// buffer is full, append to the journal on disk. Drops are counted by reason.
import { zmqToAmqp, type EnvelopeValidator } from "../schema/convert.ts";
import type { ZmqFrames } from "./transport.ts";
import type { PublishBuffer } from "../lib/publish-buffer.ts";
import type { BridgeStats } from "../lib/stats.ts";
import type { Logger } from "../lib/log.ts";
import type { Spool } from "./spool.ts";
import { ByteSlab } from "../lib/byte-slab.ts";

/** Shared by the intake, the spooler and the bridge machine (which flips `up`). */
export interface Flow {
  /** The channel is open: buffered messages can be published. */
  up: boolean;
  /** Set by the spooler actor under the spool policy. */
  spool?: Spool;
}

export interface IntakeOptions {
  id: string;
  exchange: string;
  buffer: PublishBuffer;
  stats: BridgeStats;
  flow: Flow;
  logger: Logger;
  validate?: EnvelopeValidator;
  now?: () => number;
}

/** Returns false when a message could not be kept (the buffer overflowed). */
export function createIntake({ id, exchange, buffer, stats, flow, logger, validate, now = Date.now }: IntakeOptions) {
  const { copy } = new ByteSlab();
  // One options object (and Date) per millisecond, not per message: less garbage.
  let options = { now: new Date(now()), exchange, validate, copy };
  const intake = (frames: ZmqFrames): boolean => {
    stats.received++;
    const receivedAt = now();
    if (receivedAt !== options.now.getTime()) options = { now: new Date(receivedAt), exchange, validate, copy };
    const result = zmqToAmqp(frames, options);
    if (!result.ok) {
      stats.drop(result.reason);
      logger.limited(`${id}:drop:${result.reason}`, "warning", id, `dropped (${result.reason}): ${result.detail}`);
      return true;
    }
    const message = { exchange: result.exchange, routingKey: result.routingKey, body: result.body, properties: result.properties, receivedAt };
    // Under the spool policy, keep order behind what already waits on disk.
    if (flow.spool && (!flow.up || buffer.full || flow.spool.pending > 0)) {
      flow.spool.append([message]);
      stats.spooled++;
      return true;
    }
    if (buffer.push(message)) return true;
    stats.drop("overflow");
    logger.limited(`${id}:overflow`, "error", id, `buffer full (${buffer.size} messages, ${buffer.bytes} bytes): dropped message ${result.messageId} (overflow policy drop-newest)`);
    return false;
  };
  // Whatever one message does, the next one is still taken: a bug is a counted drop, not a dead intake.
  return (frames: ZmqFrames): boolean => {
    try {
      return intake(frames);
    } catch (error) {
      stats.drop("internal");
      logger.limited(`${id}:internal`, "error", id, `dropped a message on an unexpected error (please report): ${(error as Error)?.message ?? error}`);
      return true;
    }
  };
}
