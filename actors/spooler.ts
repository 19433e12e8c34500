// Moves zmq_to_amqp's messages between memory and the on-disk spool: to disk
// when the broker goes away (SAVE) and on stop; back into the buffer, a chunk
// at a time, while the broker confirms (REPLAY).
import { fromCallback } from "xstate";
import { Spool } from "./spool.ts";
import type { Flow } from "./intake.ts";
import type { PublishBuffer } from "../lib/publish-buffer.ts";
import type { Logger } from "../lib/log.ts";

export type SpoolerEvent = { type: "SPOOL.SAVE" } | { type: "SPOOL.REPLAY" };

export interface SpoolerInput {
  id: string;
  dir: string;
  name: string;
  buffer: PublishBuffer;
  flow: Flow;
  logger: Logger;
}

export const spoolerLogic = fromCallback<SpoolerEvent, SpoolerInput>(({ input, receive }) => {
  const { id, buffer, flow, logger } = input;
  const spool = new Spool(input.dir, input.name);
  flow.spool = spool;
  if (spool.pending) logger.log("info", id, `${spool.pending} messages wait in ${spool.file} from an earlier run: replaying them once the broker confirms`);

  const save = (why: string) => {
    const n = spool.append(buffer.drain());
    if (n) logger.log("warning", id, `${why}: ${n} unconfirmed messages written to ${spool.file}`);
  };

  receive((event) => {
    if (event.type === "SPOOL.SAVE") return save("broker unavailable");
    if (!flow.up) return;
    // Refill up to half the buffer, so fresh messages still find room.
    const room = Math.floor(buffer.limits.maxMessages / 2) - buffer.size;
    if (room > 0 && spool.pending > 0) {
      for (const entry of spool.read(room)) buffer.push(entry, true);
    }
    if (spool.pending === 0 && buffer.size === 0 && spool.commit()) logger.log("info", id, `spool replayed and confirmed: ${spool.file} emptied`);
  });

  return () => {
    save("stopping");
    flow.spool = undefined;
    spool.close();
  };
});
