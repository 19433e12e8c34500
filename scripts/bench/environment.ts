// The environment recorded with the results: runtime, broker and library versions, and the machine.
import { readFileSync } from "node:fs";
import os from "node:os";
import * as zmq from "zeromq";
import { rabbitmqctl } from "./blocked.ts";
import { MB, round } from "./util.ts";

export function versions() {
  const pkg = (name: string) => {
    try {
      return (JSON.parse(readFileSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url), "utf8")) as { version: string }).version;
    } catch {
      return "unknown";
    }
  };
  let rabbitmq = "unknown";
  try {
    rabbitmq = rabbitmqctl("version").trim();
  } catch {
    /* not installed here */
  }
  const deno = (globalThis as { Deno?: { version: { deno: string } } }).Deno?.version.deno;
  return {
    runtime: deno ? `deno ${deno}` : `node ${process.versions.node}`,
    node: process.versions.node,
    v8: process.versions.v8,
    rabbitmq,
    libzmq: zmq.version,
    "@cloudamqp/amqp-client": pkg("@cloudamqp/amqp-client"),
    zeromq: pkg("zeromq"),
    xstate: pkg("xstate"),
    effect: pkg("effect"),
    tsx: pkg("tsx"),
    "fedmsg-migration-tools": (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version,
  };
}

export function machine() {
  const cpus = os.cpus();
  return { cores: cpus.length, cpu: cpus[0]?.model ?? "unknown", mem_total_mb: Math.round(os.totalmem() / MB), platform: `${os.platform()} ${os.release()}`, arch: os.arch(), loadavg: os.loadavg().map((x) => round(x, 2)) };
}
