// The on-disk journal of zmq_to_amqp's `spool` overflow policy: while the broker
// is away (or the buffer is full) messages are appended here instead of being
// dropped, and replayed once the broker confirms again. Lines are JSON; the file
// is truncated only when everything read from it was confirmed, so a crash
// (even SIGKILL) at any point costs duplicates, never messages.
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Outgoing } from "../lib/publish-buffer.ts";

type Entry = Omit<Outgoing, "seq" | "republished">;

interface Line {
  e: string;
  k: string;
  p: Outgoing["properties"];
  b: string;
  t: number;
}

export class Spool {
  readonly file: string;
  private readonly fd: number;
  private readPos = 0;
  /** Entries written and not yet read back. */
  private unread: number;
  private chunk = Buffer.alloc(1 << 20);

  constructor(dir: string, name: string) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, `${name.replace(/[^A-Za-z0-9_.-]/g, "_")}.spool.jsonl`);
    const existed = existsSync(this.file);
    this.fd = openSync(this.file, "a+");
    this.unread = existed ? this.countLines() : 0;
  }

  /** Read back, but the file still holds them until commit(). */
  get uncommitted() {
    return this.readPos > 0;
  }

  /** Entries waiting on disk (from this run or a previous one). */
  get pending() {
    return this.unread;
  }

  append(entries: Iterable<Entry>): number {
    let text = "";
    let n = 0;
    for (const m of entries) {
      const line: Line = { e: m.exchange, k: m.routingKey, p: m.properties, b: Buffer.from(m.body).toString("base64"), t: m.receivedAt };
      text += JSON.stringify(line) + "\n";
      n++;
    }
    if (n) {
      writeSync(this.fd, text);
      this.unread += n;
    }
    return n;
  }

  /** Up to `max` entries after the last one read; the file keeps them until commit(). */
  read(max: number): Entry[] {
    const out: Entry[] = [];
    while (out.length < max) {
      const got = readSync(this.fd, this.chunk, 0, this.chunk.length, this.readPos);
      if (got === 0) break;
      const text = this.chunk.subarray(0, got).toString("utf8");
      let start = 0;
      for (let nl = text.indexOf("\n"); nl !== -1 && out.length < max; nl = text.indexOf("\n", start)) {
        const l = JSON.parse(text.slice(start, nl)) as Line;
        out.push({ exchange: l.e, routingKey: l.k, properties: l.p, body: Buffer.from(l.b, "base64"), receivedAt: l.t });
        this.readPos += Buffer.byteLength(text.slice(start, nl + 1));
        start = nl + 1;
      }
      if (start === 0) {
        if (got < this.chunk.length) break; // a partial last line (torn write): wait for more
        this.chunk = Buffer.alloc(this.chunk.length * 2); // one line longer than the chunk
      }
    }
    this.unread = Math.max(0, this.unread - out.length);
    return out;
  }

  /** Everything read was confirmed: forget it. Only when nothing is left unread. */
  commit(): boolean {
    if (this.unread > 0 || this.readPos === 0) return false;
    ftruncateSync(this.fd, 0);
    this.readPos = 0;
    return true;
  }

  close() {
    closeSync(this.fd);
  }

  private countLines(): number {
    let n = 0;
    let pos = 0;
    for (let got = readSync(this.fd, this.chunk, 0, this.chunk.length, pos); got > 0; got = readSync(this.fd, this.chunk, 0, this.chunk.length, pos)) {
      for (let i = 0; i < got; i++) if (this.chunk[i] === 10) n++;
      pos += got;
    }
    return n;
  }

  get bytes() {
    return fstatSync(this.fd).size;
  }
}
