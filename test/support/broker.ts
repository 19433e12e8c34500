// Fault injection on the local RabbitMQ through rabbitmqctl. Every disturbance is
// undone by restoreBroker(), which tests call in `finally` and `after`, so the
// broker is left running with the default watermark even when a test fails.
import { execFileSync } from "node:child_process";

export function rabbitmqctl(...args: string[]): string {
  return execFileSync("rabbitmqctl", ["-q", ...args], { encoding: "utf8", timeout: 120_000 });
}

export const DEFAULT_WATERMARK = "0.4";

export function restoreBroker(): void {
  try {
    rabbitmqctl("start_app");
  } catch {
    /* already running */
  }
  rabbitmqctl("set_vm_memory_high_watermark", DEFAULT_WATERMARK);
  rabbitmqctl("await_startup");
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
