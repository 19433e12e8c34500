/** Exponential backoff with full jitter on the upper half: min(base·2^n, max), then scaled into [½, 1]. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(baseMs * 2 ** Math.min(attempt, 30), maxMs);
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
