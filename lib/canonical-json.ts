/**
 * Lossless JSON parsing and fedmsg's canonical JSON serialisation.
 *
 * fedmsg signs `fedmsg.encoding.dumps(msg)`, i.e. Python's
 *   json.dumps(msg, sort_keys=True, separators=(",", ":"))   (ensure_ascii=True, allow_nan=True)
 * applied to the dict that `json.loads` produced from the wire body. To check or make such a
 * signature byte for byte, this module must write exactly what Python writes:
 *
 *  - keys sorted by Unicode code point (Python `str` order, not UTF-16 code-unit order);
 *  - every character outside U+0020..U+007E escaped; `\n \r \t \b \f \" \\` in short form, the rest as
 *    `\uXXXX` with lowercase hex (characters beyond the BMP as a surrogate pair);
 *  - integers exactly (`12345678901234567890` stays as is, `-0` becomes `0`);
 *  - floats as `float.__repr__`: shortest round-trip digits, exponent form when the decimal
 *    exponent is < -4 or >= 16 (`1e-07`, `1.5e+16`), and always a fraction for integral floats (`1.0`);
 *  - `NaN`, `Infinity`, `-Infinity` as those bare words (Python's `allow_nan=True` default).
 *
 * Numbers are therefore parsed losslessly: {@link parseLossless} returns a plain JS `number` only when
 * serialising that number again gives what Python gives (safe integers, non-integral finite floats);
 * every other number (integers beyond 2^53, floats with an integral value such as `1.0` or `1e16`,
 * `-0.0`, out-of-range floats) becomes a {@link JsonNumber} that keeps its source token.
 *
 * For values built in JS: an integral `number` is written as a Python int (`1700000000`), a
 * non-integral one as a Python float (`0.1`, `1e-07`), a `bigint` as an int. Use
 * `JsonNumber.float(1)` to get the Python float `1.0`.
 */

/** A JSON number kept as its source token (or as Python would have written it). */
export class JsonNumber {
  readonly raw: string;
  #canonical: string | undefined;

  /** `raw` must be a JSON number token (RFC 8259 grammar) or `NaN`, `Infinity`, `-Infinity`. */
  constructor(raw: string) {
    if (!NUMBER_TOKEN.test(raw) && raw !== "NaN" && raw !== "Infinity" && raw !== "-Infinity") {
      throw new TypeError(`not a JSON number token: ${JSON.stringify(raw)}`);
    }
    this.raw = raw;
  }

  /** A Python float with this value (integral values are written `1.0`, not `1`). */
  static float(n: number): JsonNumber {
    return new JsonNumber(pythonFloatRepr(n));
  }

  /** A Python int; `value` may be a bigint, an integral number or a decimal string. */
  static int(value: bigint | number | string): JsonNumber {
    if (typeof value === "number" && !Number.isInteger(value)) {
      throw new TypeError(`not an integer: ${value}`);
    }
    const text = typeof value === "number" ? BigInt(value).toString() : BigInt(value).toString();
    return new JsonNumber(text);
  }

  /** True when the token is a JSON integer (Python `int`), false for floats. */
  get isInteger(): boolean {
    return INTEGER_TOKEN.test(this.raw);
  }

  /** What Python's json.dumps writes for this number after json.loads read `raw`. */
  get canonical(): string {
    return (this.#canonical ??= pythonNumberText(this.raw));
  }

  /** The nearest double (lossy for big integers). */
  toNumber(): number {
    return Number(this.raw);
  }

  /** Exact value of an integer token. Throws for floats. */
  toBigInt(): bigint {
    if (!this.isInteger) throw new RangeError(`${this.raw} is not an integer`);
    return BigInt(this.raw);
  }

  valueOf(): number {
    return Number(this.raw);
  }

  toString(): string {
    return this.raw;
  }

  /** For JSON.stringify (lossy, as a plain number). Use canonicalStringify for exact output. */
  toJSON(): number {
    return Number(this.raw);
  }
}

export type JsonValue =
  | null
  | boolean
  | string
  | number
  | bigint
  | JsonNumber
  | JsonValue[]
  | JsonObject;

export interface JsonObject {
  [key: string]: JsonValue;
}

export class JsonParseError extends SyntaxError {
  readonly position: number;
  constructor(message: string, position: number) {
    super(`${message} at position ${position}`);
    this.name = "JsonParseError";
    this.position = position;
  }
}

const NUMBER_TOKEN = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const INTEGER_TOKEN = /^-?(?:0|[1-9]\d*)$/;
const MAX_DEPTH = 1000;
const STRING_SPECIAL = /["\\\x00-\x1f]/g;
const HEX4 = /^[0-9a-fA-F]{4}$/;

/**
 * Parse JSON the way Python's `json.loads` does (accepts `NaN`/`Infinity`/`-Infinity`, the last of
 * duplicate keys wins, control characters inside strings are rejected), keeping numbers exact:
 * see the module comment for when a number comes back as a {@link JsonNumber}.
 */
export function parseLossless(text: string): JsonValue {
  const p = new Parser(text);
  p.ws();
  const v = p.value(0);
  p.ws();
  if (p.pos < text.length) throw new JsonParseError("Extra data", p.pos);
  return v;
}

class Parser {
  pos = 0;
  constructor(readonly s: string) {}

  ws(): void {
    const s = this.s;
    let i = this.pos;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.pos = i;
  }

  fail(msg: string): never {
    throw new JsonParseError(msg, this.pos);
  }

  value(depth: number): JsonValue {
    const s = this.s;
    const c = s.charCodeAt(this.pos);
    switch (c) {
      case 0x7b /* { */:
        return this.object(depth + 1);
      case 0x5b /* [ */:
        return this.array(depth + 1);
      case 0x22 /* " */:
        return this.string();
      case 0x74 /* t */:
        return this.word("true", true);
      case 0x66 /* f */:
        return this.word("false", false);
      case 0x6e /* n */:
        return this.word("null", null);
      case 0x4e /* N */:
        return this.word("NaN", new JsonNumber("NaN"));
      case 0x49 /* I */:
        return this.word("Infinity", new JsonNumber("Infinity"));
      case 0x2d /* - */:
        if (s.charCodeAt(this.pos + 1) === 0x49) return this.word("-Infinity", new JsonNumber("-Infinity"));
        return this.number();
      default:
        if (c >= 0x30 && c <= 0x39) return this.number();
        return this.fail(this.pos >= s.length ? "Unexpected end of input" : "Expecting value");
    }
  }

  word<T extends JsonValue>(w: string, v: T): T {
    if (!this.s.startsWith(w, this.pos)) this.fail("Expecting value");
    this.pos += w.length;
    return v;
  }

  number(): JsonValue {
    const s = this.s;
    const start = this.pos;
    let i = start;
    if (s.charCodeAt(i) === 0x2d) i++;
    let c = s.charCodeAt(i);
    if (c === 0x30) i++;
    else if (c >= 0x31 && c <= 0x39) {
      i++;
      while ((c = s.charCodeAt(i)) >= 0x30 && c <= 0x39) i++;
    } else {
      this.fail("Expecting value");
    }
    let isFloat = false;
    if (s.charCodeAt(i) === 0x2e && (c = s.charCodeAt(i + 1)) >= 0x30 && c <= 0x39) {
      isFloat = true;
      i += 2;
      while ((c = s.charCodeAt(i)) >= 0x30 && c <= 0x39) i++;
    }
    c = s.charCodeAt(i);
    if (c === 0x65 || c === 0x45) {
      let j = i + 1;
      const sign = s.charCodeAt(j);
      if (sign === 0x2b || sign === 0x2d) j++;
      if ((c = s.charCodeAt(j)) >= 0x30 && c <= 0x39) {
        isFloat = true;
        i = j + 1;
        while ((c = s.charCodeAt(i)) >= 0x30 && c <= 0x39) i++;
      }
    }
    this.pos = i;
    const raw = s.slice(start, i);
    const n = Number(raw);
    if (!isFloat) {
      return Number.isSafeInteger(n) ? n : new JsonNumber(raw);
    }
    // A non-integral finite double prints the same in JS (pythonFloatRepr) as in Python.
    return Number.isFinite(n) && !Number.isInteger(n) ? n : new JsonNumber(raw);
  }

  string(): string {
    const s = this.s;
    let chunkStart = this.pos + 1;
    let out = "";
    for (;;) {
      STRING_SPECIAL.lastIndex = chunkStart;
      const m = STRING_SPECIAL.exec(s);
      if (m === null) {
        this.pos = s.length;
        return this.fail("Unterminated string");
      }
      const i = m.index;
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        this.pos = i + 1;
        return out === "" ? s.slice(chunkStart, i) : out + s.slice(chunkStart, i);
      }
      if (c !== 0x5c) {
        this.pos = i;
        return this.fail("Invalid control character");
      }
      out += s.slice(chunkStart, i);
      const e = s.charCodeAt(i + 1);
      let next = i + 2;
      switch (e) {
        case 0x22: out += '"'; break;
        case 0x5c: out += "\\"; break;
        case 0x2f: out += "/"; break;
        case 0x62: out += "\b"; break;
        case 0x66: out += "\f"; break;
        case 0x6e: out += "\n"; break;
        case 0x72: out += "\r"; break;
        case 0x74: out += "\t"; break;
        case 0x75: {
          const hex = s.slice(i + 2, i + 6);
          if (!HEX4.test(hex)) {
            this.pos = i;
            this.fail("Invalid \\uXXXX escape");
          }
          out += String.fromCharCode(parseInt(hex, 16));
          next = i + 6;
          break;
        }
        default:
          this.pos = i;
          this.fail(Number.isNaN(e) ? "Unterminated string" : "Invalid \\escape");
      }
      chunkStart = next;
    }
  }

  array(depth: number): JsonValue[] {
    if (depth > MAX_DEPTH) this.fail("Nesting too deep");
    this.pos++;
    const arr: JsonValue[] = [];
    this.ws();
    if (this.s.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return arr;
    }
    for (;;) {
      this.ws();
      arr.push(this.value(depth));
      this.ws();
      const c = this.s.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        continue;
      }
      if (c === 0x5d) {
        this.pos++;
        return arr;
      }
      this.fail("Expecting ',' delimiter");
    }
  }

  object(depth: number): JsonObject {
    if (depth > MAX_DEPTH) this.fail("Nesting too deep");
    this.pos++;
    const obj: JsonObject = {};
    this.ws();
    if (this.s.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return obj;
    }
    for (;;) {
      this.ws();
      if (this.s.charCodeAt(this.pos) !== 0x22) this.fail("Expecting property name enclosed in double quotes");
      const key = this.string();
      this.ws();
      if (this.s.charCodeAt(this.pos) !== 0x3a) this.fail("Expecting ':' delimiter");
      this.pos++;
      this.ws();
      const v = this.value(depth);
      if (key === "__proto__") {
        Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
      } else {
        obj[key] = v;
      }
      this.ws();
      const c = this.s.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        continue;
      }
      if (c === 0x7d) {
        this.pos++;
        return obj;
      }
      this.fail("Expecting ',' delimiter");
    }
  }
}

/**
 * Python's `repr(float)` (which `json.dumps` uses): shortest digits that round-trip, fixed notation
 * when the decimal exponent is in [-4, 16), else `d[.ddd]e±XX`; integral values get `.0`.
 */
export function pythonFloatRepr(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "Infinity";
  if (n === -Infinity) return "-Infinity";
  if (n === 0) return Object.is(n, -0) ? "-0.0" : "0.0";
  const sign = n < 0 ? "-" : "";
  // ECMAScript Number::toString gives the shortest round-trip digits (closest to the value when several
  // are equally short), as David Gay's dtoa mode 0 used by Python does.
  const js = String(Math.abs(n));
  const eAt = js.indexOf("e");
  const mant = eAt < 0 ? js : js.slice(0, eAt);
  const exp10 = eAt < 0 ? 0 : Number(js.slice(eAt + 1));
  const dot = mant.indexOf(".");
  const intPart = dot < 0 ? mant : mant.slice(0, dot);
  let digits = dot < 0 ? mant : intPart + mant.slice(dot + 1);
  let decpt = intPart.length + exp10; // value = 0.DIGITS * 10^decpt
  let lead = 0;
  while (lead < digits.length - 1 && digits.charCodeAt(lead) === 0x30) lead++;
  digits = digits.slice(lead);
  decpt -= lead;
  let end = digits.length;
  while (end > 1 && digits.charCodeAt(end - 1) === 0x30) end--;
  digits = digits.slice(0, end);

  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
    if (decpt >= digits.length) return `${sign}${digits}${"0".repeat(decpt - digits.length)}.0`;
    return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
  }
  const e = decpt - 1;
  const m = digits.length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
  const eAbs = Math.abs(e);
  return `${sign}${m}e${e < 0 ? "-" : "+"}${eAbs < 10 ? "0" : ""}${eAbs}`;
}

/** What Python's json.dumps writes for a number that json.loads read from `token`. */
export function pythonNumberText(token: string): string {
  if (INTEGER_TOKEN.test(token)) return token === "-0" ? "0" : token;
  if (token === "NaN" || token === "Infinity" || token === "-Infinity") return token;
  if (!NUMBER_TOKEN.test(token)) throw new TypeError(`not a JSON number token: ${JSON.stringify(token)}`);
  return pythonFloatRepr(Number(token));
}

function jsNumberText(n: number): string {
  if (Number.isInteger(n)) {
    return Number.isSafeInteger(n) ? String(n === 0 ? 0 : n) : BigInt(n).toString();
  }
  return pythonFloatRepr(n); // non-integral, NaN or ±Infinity
}

const NEEDS_ESCAPE = /[^\x20-\x21\x23-\x5b\x5d-\x7e]/;
const NEEDS_ESCAPE_G = /[^\x20-\x21\x23-\x5b\x5d-\x7e]/g;
const SHORT_ESCAPES: Record<number, string> = {
  0x22: '\\"',
  0x5c: "\\\\",
  0x0a: "\\n",
  0x0d: "\\r",
  0x09: "\\t",
  0x08: "\\b",
  0x0c: "\\f",
};

/** Python `json.dumps(s, ensure_ascii=True)` for one string. */
export function pythonStringLiteral(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  let out = '"';
  let chunkStart = 0;
  NEEDS_ESCAPE_G.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = NEEDS_ESCAPE_G.exec(s)) !== null) {
    const i = m.index;
    const c = s.charCodeAt(i);
    // UTF-16 code units: a non-BMP character comes out as its surrogate pair, as in Python.
    out += s.slice(chunkStart, i) + (SHORT_ESCAPES[c] ?? `\\u${c.toString(16).padStart(4, "0")}`);
    chunkStart = i + 1;
  }
  return `${out}${s.slice(chunkStart)}"`;
}

/** Compare two strings by Unicode code point (Python's `str` ordering). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (U+D800-DFFF, i.e. characters >= U+10000) sort after U+E000-FFFF in code-point order.
    if (x >= 0xd800) x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
    if (y >= 0xd800) y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    return x - y;
  }
  return a.length - b.length;
}

function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj);
  for (const k of keys) {
    // Fast path: all-ASCII keys sort the same by code unit and by code point.
    if (/[^\x00-\x7f]/.test(k)) return keys.sort(compareCodePoints);
  }
  return keys.sort();
}

/**
 * fedmsg.encoding.dumps: `json.dumps(value, sort_keys=True, separators=(",", ":"))` byte for byte.
 * Accepts plain objects, arrays, strings, booleans, null, numbers, bigints and JsonNumbers; object
 * members whose value is `undefined` are left out (as JSON.stringify does); anything else throws.
 */
export function canonicalStringify(value: JsonValue): string {
  const parts: string[] = [];
  write(value, parts, new Set());
  return parts.join("");
}

function write(v: unknown, out: string[], stack: Set<object>): void {
  switch (typeof v) {
    case "string":
      out.push(pythonStringLiteral(v));
      return;
    case "number":
      out.push(jsNumberText(v));
      return;
    case "boolean":
      out.push(v ? "true" : "false");
      return;
    case "bigint":
      out.push(v.toString());
      return;
    case "object": {
      if (v === null) {
        out.push("null");
        return;
      }
      if (v instanceof JsonNumber) {
        out.push(v.canonical);
        return;
      }
      if (stack.has(v)) throw new TypeError("Circular reference detected");
      if (stack.size >= MAX_DEPTH) throw new RangeError("Nesting too deep");
      stack.add(v);
      if (Array.isArray(v)) {
        out.push("[");
        for (let i = 0; i < v.length; i++) {
          if (i > 0) out.push(",");
          write(v[i], out, stack);
        }
        out.push("]");
      } else {
        const proto = Object.getPrototypeOf(v);
        if (proto !== Object.prototype && proto !== null) {
          throw new TypeError(`Object of type ${v.constructor?.name ?? "unknown"} is not JSON serializable`);
        }
        const rec = v as Record<string, unknown>;
        out.push("{");
        let first = true;
        for (const k of sortedKeys(rec)) {
          const item = rec[k];
          if (item === undefined) continue;
          if (!first) out.push(",");
          first = false;
          out.push(pythonStringLiteral(k), ":");
          write(item, out, stack);
        }
        out.push("}");
      }
      stack.delete(v);
      return;
    }
    default:
      throw new TypeError(`Object of type ${typeof v} is not JSON serializable`);
  }
}

/** Convert JsonNumbers to plain numbers (lossy for big integers and `1.0`-style floats). */
export function toPlain(value: JsonValue): unknown {
  if (value instanceof JsonNumber) return value.toNumber();
  if (Array.isArray(value)) return value.map(toPlain);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === "__proto__") {
        Object.defineProperty(out, k, { value: toPlain(v), enumerable: true, writable: true, configurable: true });
      } else {
        out[k] = toPlain(v);
      }
    }
    return out;
  }
  return value;
}
