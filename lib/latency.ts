// A fixed-bucket latency histogram for the data plane: observe() is a few
// compares and two additions per message, nothing allocated. /metrics renders it
// as fedmsg_bridge_latency_seconds at scrape time (lib/metrics.ts).

/** Upper bounds in seconds: from a local broker's confirm (~1 ms) to a long outage. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export class LatencyHistogram {
  /** Observations per bucket, not cumulative: counts[i] holds bounds[i-1] < v ≤ bounds[i]. */
  readonly counts: number[];
  count = 0;
  sum = 0;

  constructor(readonly bounds: readonly number[] = LATENCY_BUCKETS_SECONDS) {
    this.counts = new Array<number>(bounds.length).fill(0);
  }

  observe(seconds: number): void {
    // A clock stepping back must not make a negative latency.
    const v = seconds > 0 ? seconds : 0;
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]!) i++;
    if (i < this.counts.length) this.counts[i]!++;
    this.count++;
    this.sum += v;
  }
}
