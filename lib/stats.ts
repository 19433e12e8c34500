// Per-bridge counters: plain mutable numbers bumped on the data plane (O(1)),
// read by the status line, /metrics and the summary. Never copied per message.
import { LatencyHistogram } from "./latency.ts";

export class BridgeStats {
  received = 0;
  forwarded = 0;
  /** Messages published again after a reconnect or nack: possible duplicates downstream. */
  duplicates = 0;
  returned = 0;
  reconnects = 0;
  /** Written to the on-disk spool (spool policy). */
  spooled = 0;
  /** Refused by the broker (403 topic authorization): held or dead-lettered, never dropped. */
  refused = 0;
  readonly dropped = new Map<string, number>();
  /** Seconds from intake to the broker's confirm (zmq_to_amqp) or to the PUB socket (amqp_to_zmq). */
  readonly latency = new LatencyHistogram();

  drop(reason: string) {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
  }

  get droppedTotal() {
    let total = 0;
    for (const n of this.dropped.values()) total += n;
    return total;
  }

  summary(): string {
    const reasons = [...this.dropped].map(([r, n]) => ` dropped_${r}=${n}`).join("");
    return `received=${this.received} forwarded=${this.forwarded} dropped=${this.droppedTotal} duplicates=${this.duplicates} returned=${this.returned} reconnects=${this.reconnects} spooled=${this.spooled} refused=${this.refused}${reasons}`;
  }
}
