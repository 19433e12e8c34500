// The ZeroMQ peer child process (PUB or SUB, driven over stdin/stdout) and the set of child processes to kill on exit.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import * as zmq from "zeromq";
import { PROBE_TOPIC, fittedTemplates, probeFrames, zmqFrames } from "./messages.ts";
import { ROOT } from "./util.ts";

/** The entry file, scripts/bench.ts: the peer is started by running it again with --peer. */
const SELF = fileURLToPath(new URL("../bench.ts", import.meta.url));
const isDeno = "Deno" in globalThis;

export type PeerRole = "pub" | "sub";
type Reply = Record<string, unknown> & { id?: number };

/** Runs in the child: a PUB that binds, or a SUB that connects; commands on stdin, replies on stdout. */
export async function runPeer(role: PeerRole, endpoint: string, messageBytes: number) {
  const reply = (o: Reply) => process.stdout.write(JSON.stringify(o) + "\n");
  const templates = fittedTemplates(messageBytes);
  const lines = createInterface({ input: process.stdin });
  lines.on("close", () => process.exit(0));
  if (role === "pub") {
    const pub = new zmq.Publisher({ sendHighWaterMark: 0, linger: 0 });
    await pub.bind(endpoint);
    let frames: [Buffer, Buffer][] = [];
    reply({ ready: true });
    for await (const line of lines) {
      const cmd = JSON.parse(line) as { id: number; cmd: string; n?: number };
      if (cmd.cmd === "prepare") {
        frames = zmqFrames(templates, cmd.n!);
        reply({ id: cmd.id });
      } else if (cmd.cmd === "probe") {
        await pub.send(probeFrames());
        reply({ id: cmd.id });
      } else if (cmd.cmd === "send") {
        const start = performance.now();
        for (const f of frames) await pub.send(f);
        reply({ id: cmd.id, ms: performance.now() - start, sent: frames.length });
      } else if (cmd.cmd === "exit") {
        pub.close();
        process.exit(0);
      }
    }
  } else {
    // Retries the connect every 1 ms, so it is attached within a millisecond of the bridge binding.
    const sub = new zmq.Subscriber({ receiveHighWaterMark: 0, reconnectInterval: 1, linger: 0 });
    sub.connect(endpoint);
    sub.subscribe();
    let count = 0;
    let first = 0;
    let expect = Infinity;
    let expectId = 0;
    void (async () => {
      for await (const [topic] of sub) {
        if (topic!.toString() === PROBE_TOPIC) continue;
        if (++count === 1) first = performance.now();
        if (count === expect) reply({ id: expectId, count, ms: performance.now() - first });
      }
    })();
    reply({ ready: true });
    for await (const line of lines) {
      const cmd = JSON.parse(line) as { id: number; cmd: string; n?: number };
      if (cmd.cmd === "expect") {
        count = 0;
        expect = cmd.n!;
        expectId = cmd.id;
      } else if (cmd.cmd === "count") {
        reply({ id: cmd.id, count });
      } else if (cmd.cmd === "exit") {
        sub.close();
        process.exit(0);
      }
    }
  }
}

export const children = new Set<ChildProcess>();
/** The zmq_to_amqp node process of (g), under npx: killed on the way out too. */
export const bridgePids = new Set<number>();

export function killBridges(signal: NodeJS.Signals) {
  for (const pid of bridgePids) {
    try {
      process.kill(pid, signal);
    } catch {
      bridgePids.delete(pid);
    }
  }
}

export class Peer {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private ready!: Promise<void>;

  private constructor(private readonly child: ChildProcess) {}

  get pid() {
    return this.child.pid;
  }

  static async start(role: PeerRole, endpoint: string, messageBytes: number): Promise<Peer> {
    const [cmd, args] = isDeno ? [process.execPath, ["run", "-A", SELF]] : [process.execPath, ["--import", "tsx", SELF]];
    const child = spawn(cmd, [...args, "--peer", role, "--endpoint", endpoint, "--bytes", String(messageBytes)], { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
    children.add(child);
    child.on("exit", () => children.delete(child));
    const peer = new Peer(child);
    peer.ready = new Promise((resolve, reject) => {
      child.on("exit", (code) => reject(new Error(`bench: ZeroMQ ${role} peer exited (${code})`)));
      createInterface({ input: child.stdout! }).on("line", (line) => {
        const r = JSON.parse(line) as Reply;
        if (r.ready) return resolve();
        if (r.id === undefined) return;
        peer.waiting.get(r.id)?.(r);
        peer.waiting.delete(r.id);
      });
    });
    await peer.ready;
    return peer;
  }

  request(cmd: string, fields: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bench: peer did not answer ${cmd} in ${timeoutMs} ms`)), timeoutMs);
      this.waiting.set(id, (r) => (clearTimeout(timer), resolve(r)));
      this.child.stdin!.write(JSON.stringify({ id, cmd, ...fields }) + "\n");
    });
  }

  close() {
    this.child.stdin!.end();
    setTimeout(() => this.child.kill("SIGKILL"), 2000).unref();
  }
}
