// One line per event, human by default or JSON lines; a repeating error is
// rate-limited per key and the number suppressed is reported with the next one.
import { redactText } from "./redact.ts";

export type LogLevel = "debug" | "info" | "warning" | "error";
export type LogFormat = "human" | "json";

export interface Logger {
  log(level: LogLevel, actor: string, message: string, fields?: Record<string, unknown>): void;
  /** Like log, but at most one line per `key` every `intervalMs`. */
  limited(key: string, level: LogLevel, actor: string, message: string, fields?: Record<string, unknown>): void;
  /** Once the actors run: the current state of an actor id, for JSON lines. */
  stateOf?: (actor: string) => string | undefined;
}

export interface LoggerOptions {
  format?: LogFormat;
  write?: (line: string) => void;
  now?: () => number;
  intervalMs?: number;
  minLevel?: LogLevel;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warning: 30, error: 40 };

export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? "human";
  const write = options.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const now = options.now ?? Date.now;
  const intervalMs = options.intervalMs ?? 10_000;
  const minRank = RANK[options.minLevel ?? "info"];
  const lastByKey = new Map<string, { at: number; suppressed: number }>();

  function log(level: LogLevel, actor: string, message: string, fields?: Record<string, unknown>) {
    if (RANK[level] < minRank) return;
    const text = redactText(message);
    if (format === "json") {
      const state = logger.stateOf?.(actor);
      write(redactText(JSON.stringify({ time: new Date(now()).toISOString(), level, actor, ...(state ? { state } : {}), message: text, ...fields })));
    } else {
      const extra = fields ? " " + Object.entries(fields).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ") : "";
      write(`${new Date(now()).toISOString()} ${level.toUpperCase()} [${actor}] ${text}${redactText(extra)}`);
    }
  }

  function limited(key: string, level: LogLevel, actor: string, message: string, fields?: Record<string, unknown>) {
    const t = now();
    const last = lastByKey.get(key);
    if (last && t - last.at < intervalMs) {
      last.suppressed++;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    lastByKey.set(key, { at: t, suppressed: 0 });
    if (lastByKey.size > 1000) lastByKey.delete(lastByKey.keys().next().value as string);
    log(level, actor, message, suppressed ? { ...fields, suppressed } : fields);
  }

  const logger: Logger = { log, limited };
  return logger;
}

/** A logger that keeps lines in memory, for tests. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger({ write: (l) => lines.push(l), minLevel: "debug" }), { lines });
}
