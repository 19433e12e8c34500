// verify_missing's data plane: every message seen on ZeroMQ or AMQP waits here,
// keyed by its msg_id without the `YYYY-` prefix, until the other side's copy
// arrives (a match, with a content check) or the window passes (a missing
// report). No XState, no I/O, no timers: the verifier machine calls match() and
// sweep() on its own schedule and passes the times in.
//
// Bounded and O(1) per message (one Map lookup per message):
// - live entries: a Map by stripped id plus an intrusive doubly linked list of
//   the one-sided entries in arrival order. The list (not Map iteration order)
//   finds the oldest: evicting `map.keys().next()` repeatedly is O(n) per call in
//   V8 (deleted slots stay at the front until a rehash) — 67 s for 1M evictions
//   at a 100k cap, measured.
// - at most `maxPending` live entries; past that the oldest one-sided entry is
//   evicted and counted as overflow.
// - settled ids (matched, reported missing, evicted) stay in the same Map as a
//   small integer, their slot in a ring of `maxRecent`, so a late copy is
//   counted, never re-reported; overwriting a ring slot forgets that id. The Map
//   never holds more than maxPending + maxRecent ids.
// - bodies are not kept: the first copy keeps a 53-bit hash of its JSON value
//   (key order irrelevant) and, to say which keys differ, its top-level keys with
//   one hash each; the second copy is only hashed, and diffed on a mismatch.
// - delays go into a fixed log-scale histogram.
// Memory, measured (Node 20, 820-byte fedmsg bodies, strings from JSON.parse):
// ~620 B per live entry, ~135 B per remembered settled id.
import { stripYearPrefix } from "../schema/convert.ts";

export type Side = "zmq" | "amqp";

/**
 * A message seen on one side only for longer than the window. `side` is the side
 * it is missing from (as in the summary's missing_amqp / missing_zmq);
 * `seenOn` the side that delivered it.
 */
export interface MissingFinding {
  kind: "missing";
  side: Side;
  seenOn: Side;
  /** msg_id without the year prefix: what the Python tool logs. */
  id: string;
  /** msg_id / message_id exactly as received. */
  rawId: string;
  topic: string;
  /** Arrival time, ISO 8601 UTC (`2026-11-28T05:56:52.123Z`). */
  at: string;
}

/** Both copies arrived but differ: body (`keys`) or topic (`topics`) or both. */
export interface MismatchFinding {
  kind: "mismatch";
  id: string;
  /** The ZeroMQ msg_id as received. */
  rawId: string;
  /** The ZeroMQ topic. */
  topic: string;
  /** Arrival time of the first copy, ISO 8601 UTC. */
  at: string;
  /** Top-level body keys (sorted) whose values differ or that only one side has; `(body)` when either body is not a JSON object. */
  keys: string[];
  /** Present when the ZeroMQ topic and the AMQP routing key differ. */
  topics?: { zmq: string; amqp: string };
  /** |AMQP arrival − ZeroMQ arrival| in ms. */
  delayMs: number;
}

export type VerifierFinding = MissingFinding | MismatchFinding;

export interface MatchResult {
  /** Pairs cleared by this call (mismatched ones included). */
  matched: number;
  mismatches: MismatchFinding[];
}

/** Counters are cumulative since the tracker was created. */
export interface VerifierSummary {
  /** Pairs seen on both sides (content equal or not). */
  matched: number;
  /** Only received in ZeroMQ: missing on the AMQP side. */
  missingAmqp: number;
  /** Only received in AMQP: missing on the ZeroMQ side. */
  missingZmq: number;
  mismatched: number;
  duplicatesZmq: number;
  duplicatesAmqp: number;
  /** Second copies that arrived after their first was already reported missing (not reported again). */
  late: number;
  /** One-sided entries evicted because maxPending was reached (plus mismatch details dropped, see maxCarried). */
  overflow: number;
  /** Entries held now (one-sided, and pairs waiting for the next match). */
  pending: number;
  delaySamples: number;
  /** Nearest-rank percentiles of the delay between the two copies, ms; 0 when no samples. */
  delayP50Ms: number;
  delayP99Ms: number;
}

export interface TrackerOptions {
  /** A one-sided entry older than this is reported missing by sweep(). Default 60 000. */
  windowMs?: number;
  /** Cap on tracked entries. Default 100 000 (1 000 msg/s over window + check interval, with margin). */
  maxPending?: number;
  /** Cap on recently settled ids remembered for duplicate / late detection. Default maxPending. */
  maxRecent?: number;
}

export const DEFAULT_WINDOW_MS = 60_000;
export const DEFAULT_MATCH_INTERVAL_MS = 1_000;
export const DEFAULT_CHECK_INTERVAL_MS = 10_000;
export const DEFAULT_MAX_PENDING = 100_000;

/** Mismatch findings held between two match() calls when a full tracker forces early matching. */
const MAX_CARRIED = 10_000;

const BODY_KEY = "(body)";
const NO_KEYS: readonly string[] = Object.freeze([]);
const NO_HASHES: readonly number[] = Object.freeze([]);

// A settled id (matched, reported missing, evicted) stays in the map as a small
// integer, `ring slot * 8 + what happened`, so its Entry dies young; what happened
// decides how a later copy counts.
const R_MATCHED = 0;
const R_MISSING_FROM_AMQP = 1; // reported: only received in ZeroMQ
const R_MISSING_FROM_ZMQ = 2; // reported: only received in AMQP
const R_EVICTED_ZMQ = 3; // ZeroMQ copy evicted by overflow
const R_EVICTED_AMQP = 4; // AMQP copy evicted by overflow

/** A live id: one side seen (linked in the arrival list), or both (waiting for match()). */
class Entry {
  prev: Entry | undefined = undefined;
  next: Entry | undefined = undefined;
  zId: string | undefined = undefined;
  zTopic = "";
  zAt = 0;
  zHash = 0;
  zKeys: readonly string[] = NO_KEYS;
  zKeyHashes: readonly number[] = NO_HASHES;
  aId: string | undefined = undefined;
  aTopic = "";
  aAt = 0;
  aHash = 0;
  aKeys: readonly string[] = NO_KEYS;
  aKeyHashes: readonly number[] = NO_HASHES;
  constructor(readonly key: string, readonly firstAt: number) {}
}

export class VerifierTracker {
  readonly windowMs: number;
  readonly maxPending: number;
  readonly maxRecent: number;

  /** Live entries and settled ids (a number, see R_*), by stripped id: one lookup per message. */
  private readonly entries = new Map<string, Entry | number>();
  private live = 0;
  private head: Entry | undefined = undefined; // oldest one-sided entry
  private tail: Entry | undefined = undefined;
  private ready: Entry[] = [];
  private carried: MismatchFinding[] = [];
  /** Ring of settled ids; overwriting a slot forgets that id. */
  private readonly recent: (string | undefined)[];
  private recentNext = 0;

  private readonly delays = new DelayHistogram();
  private counts = {
    matched: 0,
    missingAmqp: 0,
    missingZmq: 0,
    mismatched: 0,
    duplicatesZmq: 0,
    duplicatesAmqp: 0,
    late: 0,
    overflow: 0,
  };

  constructor(options: TrackerOptions = {}) {
    this.windowMs = positive("windowMs", options.windowMs ?? DEFAULT_WINDOW_MS);
    this.maxPending = positive("maxPending", options.maxPending ?? DEFAULT_MAX_PENDING);
    this.maxRecent = positive("maxRecent", options.maxRecent ?? this.maxPending);
    // Settled ids are stored as `slot * 8 + kind` and read back with `>>> 3`.
    if (this.maxRecent > 2 ** 28) throw new RangeError(`VerifierTracker: maxRecent must be at most ${2 ** 28}, got ${this.maxRecent}`);
    this.recent = new Array(this.maxRecent).fill(undefined);
  }

  /** Live entries: one-sided ones and pairs waiting for match(). Never more than maxPending. */
  get size(): number {
    return this.live;
  }

  /** A fedmsg envelope from ZeroMQ: its msg_id, topic and `msg`. */
  seenZmq(id: string, topic: string, msg: unknown, at: number): void {
    const key = stripYearPrefix(id);
    const found = this.entries.get(key);
    let e: Entry;
    if (found === undefined) {
      e = this.add(key, at);
    } else if (typeof found === "number") {
      this.settledAgain(key, found, "zmq");
      return;
    } else if (found.zId !== undefined) {
      this.counts.duplicatesZmq++;
      return;
    } else {
      e = found;
    }
    e.zId = id;
    e.zTopic = topic;
    e.zAt = at;
    if (e.aId === undefined) {
      digest(msg);
      e.zHash = dHash;
      e.zKeys = dKeys;
      e.zKeyHashes = dKeyHashes;
    } else {
      // The second copy: its hash alone (no key lists) unless it differs.
      e.zHash = contentHash(msg);
      if (e.zHash !== e.aHash) {
        digest(msg);
        e.zKeys = dKeys;
        e.zKeyHashes = dKeyHashes;
      }
      this.complete(e);
    }
  }

  /** An AMQP delivery: its message_id, routing key and decoded JSON body. */
  seenAmqp(id: string, topic: string, body: unknown, at: number): void {
    const key = stripYearPrefix(id);
    const found = this.entries.get(key);
    let e: Entry;
    if (found === undefined) {
      e = this.add(key, at);
    } else if (typeof found === "number") {
      this.settledAgain(key, found, "amqp");
      return;
    } else if (found.aId !== undefined) {
      this.counts.duplicatesAmqp++;
      return;
    } else {
      e = found;
    }
    e.aId = id;
    e.aTopic = topic;
    e.aAt = at;
    if (e.zId === undefined) {
      digest(body);
      e.aHash = dHash;
      e.aKeys = dKeys;
      e.aKeyHashes = dKeyHashes;
    } else {
      // The second copy: its hash alone (no key lists) unless it differs.
      e.aHash = contentHash(body);
      if (e.aHash !== e.zHash) {
        digest(body);
        e.aKeys = dKeys;
        e.aKeyHashes = dKeyHashes;
      }
      this.complete(e);
    }
  }

  /** Clears the pairs completed since the last call; returns how many and the ones whose contents differ. */
  match(_now?: number): MatchResult {
    const mismatches = this.carried;
    this.carried = [];
    const matched = this.drainReady(mismatches, Number.POSITIVE_INFINITY);
    return { matched, mismatches };
  }

  /**
   * Removes and returns the one-sided entries that arrived more than windowMs
   * before `now` (strictly, as the Python tool: `time < now - window`), those
   * only received in AMQP first, then those only received in ZeroMQ, as the
   * Python tool reports them.
   */
  sweep(now: number): MissingFinding[] {
    const threshold = now - this.windowMs;
    const onlyAmqp: MissingFinding[] = [];
    const onlyZmq: MissingFinding[] = [];
    // The list is in arrival order, so the walk stops at the first young entry.
    while (this.head !== undefined && this.head.firstAt < threshold) {
      const e = this.head;
      this.unlink(e);
      if (e.zId !== undefined) {
        this.counts.missingAmqp++;
        onlyZmq.push({ kind: "missing", side: "amqp", seenOn: "zmq", id: e.key, rawId: e.zId, topic: e.zTopic, at: isoUtc(e.zAt) });
        this.settle(e, R_MISSING_FROM_AMQP);
      } else {
        this.counts.missingZmq++;
        onlyAmqp.push({ kind: "missing", side: "zmq", seenOn: "amqp", id: e.key, rawId: e.aId!, topic: e.aTopic, at: isoUtc(e.aAt) });
        this.settle(e, R_MISSING_FROM_ZMQ);
      }
    }
    for (const f of onlyZmq) onlyAmqp.push(f);
    return onlyAmqp;
  }

  summary(): VerifierSummary {
    return {
      ...this.counts,
      pending: this.live,
      delaySamples: this.delays.total,
      delayP50Ms: this.delays.percentile(50),
      delayP99Ms: this.delays.percentile(99),
    };
  }

  // --- internals ---------------------------------------------------------

  /** A copy of an id settled earlier: counted, never tracked again. */
  private settledAgain(key: string, settled: number, side: Side): void {
    const kind = settled & 7;
    const seenBefore =
      kind === R_MATCHED ||
      (side === "zmq" ? kind === R_MISSING_FROM_AMQP || kind === R_EVICTED_ZMQ : kind === R_MISSING_FROM_ZMQ || kind === R_EVICTED_AMQP);
    if (seenBefore) {
      if (side === "zmq") this.counts.duplicatesZmq++;
      else this.counts.duplicatesAmqp++;
    } else if (kind === R_MISSING_FROM_AMQP || kind === R_MISSING_FROM_ZMQ) {
      // The other copy, after the first was already reported missing.
      this.counts.late++;
    } else {
      // The other copy of an entry evicted by overflow: it did arrive on both
      // sides; content and delay are unknown.
      this.counts.matched++;
    }
    if (kind !== R_MATCHED) this.entries.set(key, settled - kind + R_MATCHED);
  }

  private add(key: string, at: number): Entry {
    if (this.live >= this.maxPending) this.makeRoom();
    const e = new Entry(key, at);
    this.entries.set(key, e);
    this.live++;
    // Append to the arrival list.
    e.prev = this.tail;
    if (this.tail !== undefined) this.tail.next = e;
    else this.head = e;
    this.tail = e;
    return e;
  }

  private makeRoom(): void {
    const oldest = this.head;
    if (oldest !== undefined) {
      this.unlink(oldest);
      this.counts.overflow++;
      this.settle(oldest, oldest.zId !== undefined ? R_EVICTED_ZMQ : R_EVICTED_AMQP);
      return;
    }
    // Every entry is a completed pair waiting for match(): more than maxPending
    // pairs within one match interval. Match them now; the mismatches wait for
    // the next match() call (bounded, the excess counted as overflow).
    this.drainReady(this.carried, MAX_CARRIED);
  }

  private complete(e: Entry): void {
    this.unlink(e);
    this.ready.push(e);
  }

  /** Out of the live set into the recent ring; the ring slot's previous entry is forgotten. */
  private settle(e: Entry, kind: number): void {
    this.live--;
    const slot = this.recentNext;
    const old = this.recent[slot];
    if (old !== undefined) {
      const v = this.entries.get(old);
      if (typeof v === "number" && v >>> 3 === slot) this.entries.delete(old);
    }
    this.recent[slot] = e.key;
    this.entries.set(e.key, slot * 8 + kind);
    this.recentNext = slot + 1 === this.recent.length ? 0 : slot + 1;
  }

  private drainReady(into: MismatchFinding[], maxFindings: number): number {
    const ready = this.ready;
    this.ready = [];
    let matched = 0;
    for (let i = 0; i < ready.length; i++) {
      const e = ready[i];
      matched++;
      const delay = Math.abs(e.aAt - e.zAt);
      this.delays.record(delay);
      const topicsDiffer = e.zTopic !== e.aTopic;
      if (e.zHash !== e.aHash || topicsDiffer) {
        this.counts.mismatched++;
        if (into.length < maxFindings) {
          const f: MismatchFinding = {
            kind: "mismatch",
            id: e.key,
            rawId: e.zId!,
            topic: e.zTopic,
            at: isoUtc(e.firstAt),
            keys: e.zHash !== e.aHash ? differingKeys(e) : [],
            delayMs: delay,
          };
          if (topicsDiffer) f.topics = { zmq: e.zTopic, amqp: e.aTopic };
          into.push(f);
        } else {
          this.counts.overflow++;
        }
      }
      this.settle(e, R_MATCHED);
    }
    this.counts.matched += matched;
    return matched;
  }

  private unlink(e: Entry): void {
    if (e.prev !== undefined) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next !== undefined) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = undefined;
    e.next = undefined;
  }
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`VerifierTracker: ${name} must be a positive number, got ${value}`);
  }
  return value;
}

/** Which top-level keys differ (sorted), from the two key lists and their member hashes. Only on a mismatch. */
function differingKeys(e: Entry): string[] {
  const zk = e.zKeys;
  const ak = e.aKeys;
  // An empty key list with a hash other than {}'s means a body that is not an object.
  if ((zk.length === 0 && e.zHash !== EMPTY_OBJECT_HASH) || (ak.length === 0 && e.aHash !== EMPTY_OBJECT_HASH)) {
    return [BODY_KEY];
  }
  const amqp = new Map<string, number>();
  for (let j = 0; j < ak.length; j++) amqp.set(ak[j], e.aKeyHashes[j]);
  const out: string[] = [];
  for (let i = 0; i < zk.length; i++) {
    const h = amqp.get(zk[i]);
    if (h !== e.zKeyHashes[i]) out.push(zk[i]);
    amqp.delete(zk[i]);
  }
  for (const k of amqp.keys()) out.push(k);
  return out.sort();
}

// --- JSON content hashing -----------------------------------------------------
// A 53-bit hash of a JSON value in which object key order does not count: every
// value is hashed on its own (two 32-bit multiplicative lanes, cyrb53-style
// finalisation), an array folds its elements' hashes in order, an object adds up
// the hashes of its (key, value) members (addition mod 2^32 commutes, so no key
// sorting, the costly part of a canonical serialisation). Values are tagged and
// lengths mixed in, so "1" ≠ 1, ["ab"] ≠ ["a","b"], {} ≠ []. No strings are built
// except number formatting for non-integers. Recursion depth is the JSON nesting depth.

// The hash of the last value, as two int32 lanes (module variables: no object per value).
let r1 = 0;
let r2 = 0;

const SEED1 = 0xdeadbeef | 0;
const SEED2 = 0x41c6ce57;
const M1 = 2654435761;
const M2 = 1597334677;

const T_NULL = 1;
const T_TRUE = 2;
const T_FALSE = 3;
const T_INT = 4;
const T_NUM = 5;
const T_STR = 6;
const T_ARR = 7;
const T_OBJ = 8;
const T_MEMBER = 9;
const T_OTHER = 10;

/** cyrb53's finalisation of lanes (a, b) into (r1, r2). */
function finish(a: number, b: number): void {
  a = Math.imul(a ^ (a >>> 16), 2246822507);
  a ^= Math.imul(b ^ (b >>> 13), 3266489909);
  b = Math.imul(b ^ (b >>> 16), 2246822507);
  b ^= Math.imul(a ^ (a >>> 13), 3266489909);
  r1 = a;
  r2 = b;
}

function hashChars(tag: number, s: string): void {
  let a = Math.imul(SEED1 ^ tag, M1);
  let b = Math.imul(SEED2 ^ tag, M2);
  a = Math.imul(a ^ s.length, M1);
  b = Math.imul(b ^ s.length, M2);
  // Two UTF-16 units per step (the length is already mixed in, so the tail is unambiguous).
  const last = s.length - 1;
  let i = 0;
  for (; i < last; i += 2) {
    const c = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16);
    a = Math.imul(a ^ c, M1);
    b = Math.imul(b ^ c, M2);
  }
  if (i === last) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, M1);
    b = Math.imul(b ^ c, M2);
  }
  finish(a, b);
}

function hashTag(tag: number, x: number): void {
  finish(Math.imul(Math.imul(SEED1 ^ tag, M1) ^ x, M1), Math.imul(Math.imul(SEED2 ^ tag, M2) ^ x, M2));
}

/** Hash of one object member: its key and value hashes combined. */
function hashMember(key: string, value: unknown): void {
  let a = Math.imul(Math.imul(SEED1 ^ T_MEMBER, M1) ^ key.length, M1);
  let b = Math.imul(Math.imul(SEED2 ^ T_MEMBER, M2) ^ key.length, M2);
  const last = key.length - 1;
  let i = 0;
  for (; i < last; i += 2) {
    const c = key.charCodeAt(i) | (key.charCodeAt(i + 1) << 16);
    a = Math.imul(a ^ c, M1);
    b = Math.imul(b ^ c, M2);
  }
  if (i === last) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, M1);
    b = Math.imul(b ^ c, M2);
  }
  hashValue(value);
  a = Math.imul(a ^ r1, M1);
  b = Math.imul(b ^ r2, M2);
  finish(a, b);
}

function hashValue(v: unknown): void {
  switch (typeof v) {
    case "string":
      hashChars(T_STR, v);
      return;
    case "number":
      if ((v | 0) === v) hashTag(T_INT, v); // -0 too: JSON-equal to 0
      else hashChars(T_NUM, String(v));
      return;
    case "boolean":
      hashTag(v ? T_TRUE : T_FALSE, 0);
      return;
    case "object": {
      if (v === null) {
        hashTag(T_NULL, 0);
        return;
      }
      if (Array.isArray(v)) {
        let a = Math.imul(Math.imul(SEED1 ^ T_ARR, M1) ^ v.length, M1);
        let b = Math.imul(Math.imul(SEED2 ^ T_ARR, M2) ^ v.length, M2);
        for (let i = 0; i < v.length; i++) {
          hashValue(v[i]);
          a = Math.imul(a ^ r1, M1);
          b = Math.imul(b ^ r2, M2);
        }
        finish(a, b);
        return;
      }
      let s1 = 0;
      let s2 = 0;
      let n = 0;
      const o = v as Record<string, unknown>;
      // for-in: no key array allocated; JSON.parse objects have only own, plain keys.
      for (const k in o) {
        hashMember(k, o[k]);
        s1 = (s1 + r1) | 0;
        s2 = (s2 + r2) | 0;
        n++;
      }
      objectHash(s1, s2, n);
      return;
    }
    default:
      // undefined, bigint, function, symbol: not JSON; hashed by their text.
      hashChars(T_OTHER, String(v));
  }
}

function objectHash(s1: number, s2: number, n: number): void {
  let a = Math.imul(Math.imul(SEED1 ^ T_OBJ, M1) ^ n, M1);
  let b = Math.imul(Math.imul(SEED2 ^ T_OBJ, M2) ^ n, M2);
  a = Math.imul(a ^ s1, M1);
  b = Math.imul(b ^ s2, M2);
  a = Math.imul(a ^ s2, M1);
  b = Math.imul(b ^ s1, M2);
  finish(a, b);
}

/** (r1, r2) as one non-negative integer below 2^53, stored unboxed in double arrays. */
function lanes53(): number {
  return 4294967296 * (2097151 & r2) + (r1 >>> 0);
}

// digest() results, in module variables to avoid an object per message.
let dHash = 0;
let dKeys: readonly string[] = NO_KEYS;
let dKeyHashes: readonly number[] = NO_HASHES;

objectHash(0, 0, 0);
const EMPTY_OBJECT_HASH = lanes53();

/**
 * Hash of `v` (equal for equal JSON values, key order aside) into dHash, plus,
 * when `v` is an object, its top-level keys (in their own order) and member
 * hashes, to name the differing keys on a mismatch.
 */
function digest(v: unknown): void {
  if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 0) {
      dKeys = NO_KEYS;
      dKeyHashes = NO_HASHES;
      dHash = EMPTY_OBJECT_HASH;
      return;
    }
    const hashes: number[] = [];
    let s1 = 0;
    let s2 = 0;
    for (let i = 0; i < keys.length; i++) {
      hashMember(keys[i], o[keys[i]]);
      s1 = (s1 + r1) | 0;
      s2 = (s2 + r2) | 0;
      hashes.push(lanes53());
    }
    objectHash(s1, s2, keys.length);
    dKeys = keys;
    dKeyHashes = hashes;
    dHash = lanes53();
    return;
  }
  hashValue(v);
  dKeys = NO_KEYS;
  dKeyHashes = NO_HASHES;
  dHash = lanes53();
}

/** The same hash as digest() gives, without the key lists. */
function contentHash(v: unknown): number {
  hashValue(v);
  return lanes53();
}

/** Exposed for tests: true when two JSON values are equal for the verifier (key order irrelevant). */
export function sameJsonContent(a: unknown, b: unknown): boolean {
  digest(a);
  const ha = dHash;
  digest(b);
  return ha === dHash;
}

// --- delay histogram ----------------------------------------------------------
// Exact below 64 ms, then 32 sub-buckets per power of two (≤ 3 % error), up to
// 2^31 ms; 864 buckets, O(1) per sample, percentiles by a walk of the buckets.

const EXACT = 64;
const SUB_BITS = 5;
const SUB = 1 << SUB_BITS;
const MAX_DELAY = 0x7fffffff;
const BUCKETS = EXACT + (31 - 6) * SUB;

class DelayHistogram {
  readonly counts = new Float64Array(BUCKETS);
  total = 0;

  record(ms: number): void {
    const d = Math.min(Math.round(ms), MAX_DELAY);
    this.counts[bucketOf(d >= 0 ? d : 0)]++;
    this.total++;
  }

  /** Nearest-rank percentile, as the middle of its bucket (exact below 64 ms). */
  percentile(p: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return bucketValue(i);
    }
    return MAX_DELAY;
  }
}

function bucketOf(d: number): number {
  if (d < EXACT) return d;
  const e = 31 - Math.clz32(d); // 6..30
  const sub = (d >>> (e - SUB_BITS)) & (SUB - 1);
  return EXACT + (e - 6) * SUB + sub;
}

function bucketValue(i: number): number {
  if (i < EXACT) return i;
  const e = 6 + Math.floor((i - EXACT) / SUB);
  const sub = (i - EXACT) % SUB;
  const width = 2 ** (e - SUB_BITS);
  const low = (SUB + sub) * width;
  return low + Math.floor((width - 1) / 2);
}

// --- wording ----------------------------------------------------------------

/** ISO 8601 UTC with milliseconds and `Z`, for the JSON report. */
export function isoUtc(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * The arrival time as the Python tool prints it: `datetime.utcnow().isoformat()`,
 * a naive UTC datetime, so no offset: `2026-11-28T05:56:52.123456`, microseconds
 * zero-padded to 6 digits, and — as Python's isoformat() does — no fraction at
 * all when the microseconds are 0 (`2026-11-28T05:56:52`).
 */
export function pythonUtcIsoformat(ms: number): string {
  const whole = Math.floor(ms / 1000) * 1000;
  const base = new Date(whole).toISOString().slice(0, 19);
  const micro = Math.min(999_999, Math.round((ms - whole) * 1000));
  return micro === 0 ? base : `${base}.${String(micro).padStart(6, "0")}`;
}

const SIDE_NAME: Record<Side, string> = { zmq: "ZeroMQ", amqp: "AMQP" };

/**
 * One log line per finding. Missing: the Python tool's exact wording,
 * `Message <id> was only received in AMQP (at <iso time>, with topic <topic>)`,
 * with <id> the msg_id without its year prefix (the Python tool's store key) and
 * `NO TOPIC` for an empty topic. Mismatch: a line with `mismatch`, the id and what differs.
 */
export function formatFinding(f: VerifierFinding): string {
  const at = pythonUtcIsoformat(Date.parse(f.at));
  if (f.kind === "missing") {
    return `Message ${f.id} was only received in ${SIDE_NAME[f.seenOn]} (at ${at}, with topic ${f.topic || "NO TOPIC"})`;
  }
  const parts: string[] = [];
  if (f.keys.length > 0) parts.push(`body keys differ: ${f.keys.join(", ")}`);
  if (f.topics) parts.push(`topic differs: ZeroMQ ${f.topics.zmq || "NO TOPIC"}, AMQP ${f.topics.amqp || "NO TOPIC"}`);
  return `Message ${f.id} mismatch between ZeroMQ and AMQP (at ${at}, with topic ${f.topic || "NO TOPIC"}): ${parts.join("; ")}`;
}

/**
 * `summary verify:<name> matched=N missing_amqp=N missing_zmq=N mismatched=N
 * duplicates_zmq=N duplicates_amqp=N overflow=N pending=N delay_p50_ms=N
 * delay_p99_ms=N late=N` — missing_amqp counts messages only received in
 * ZeroMQ (missing on the AMQP side), missing_zmq the reverse.
 */
export function formatSummary(name: string, s: VerifierSummary): string {
  return (
    `summary verify:${name} matched=${s.matched} missing_amqp=${s.missingAmqp} missing_zmq=${s.missingZmq}` +
    ` mismatched=${s.mismatched} duplicates_zmq=${s.duplicatesZmq} duplicates_amqp=${s.duplicatesAmqp}` +
    ` overflow=${s.overflow} pending=${s.pending} delay_p50_ms=${s.delayP50Ms} delay_p99_ms=${s.delayP99Ms} late=${s.late}`
  );
}
