// Where the broker URL and the Python tool's settings come from, in the order the
// Python tools look: --amqp-url, $AMQP_URL, fedora-messaging's config.toml, a default.
import { existsSync, readFileSync } from "node:fs";
import { parse as parseToml } from "smol-toml";

export const DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/%2F";
export const FEDORA_MESSAGING_CONF = "/etc/fedora-messaging/config.toml";

export type Toml = Record<string, unknown>;

export function readToml(file: string): Toml {
  try {
    return parseToml(readFileSync(file, "utf8")) as Toml;
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message.split("\n")[0]}`);
  }
}

/** The fedora-messaging config file, if there is one. */
export function fedoraMessagingConfig(env: NodeJS.ProcessEnv = process.env): Toml | undefined {
  const file = env.FEDORA_MESSAGING_CONF ?? FEDORA_MESSAGING_CONF;
  return existsSync(file) ? readToml(file) : undefined;
}

export function resolveAmqpUrl(flag: string | undefined, conf: Toml | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return flag;
  if (env.AMQP_URL) return env.AMQP_URL;
  const fromConf = conf?.amqp_url ?? fedoraMessagingConfig(env)?.amqp_url;
  return typeof fromConf === "string" ? fromConf : DEFAULT_AMQP_URL;
}

/**
 * fedora-messaging's `[tls]` section (ca_cert, certfile, keyfile) for an amqps://
 * URL, from --conf or else the fedora-messaging config file; none for amqp://
 * (fedora-messaging's default config has a [tls] section even for plain AMQP).
 */
export function resolveTls(url: string, conf: Toml | undefined, env: NodeJS.ProcessEnv = process.env): Record<string, string> | undefined {
  if (!url.startsWith("amqps:")) return undefined;
  const section = (conf?.tls ?? fedoraMessagingConfig(env)?.tls) as Toml | undefined;
  const tls: Record<string, string> = {};
  for (const key of ["ca_cert", "certfile", "keyfile"]) {
    const value = section?.[key];
    if (typeof value === "string" && value !== "") tls[key] = value;
  }
  return Object.keys(tls).length > 0 ? tls : undefined;
}

/** Objects merged key by key, recursively; anything else in `over` replaces `base`. */
export function deepMerge<T>(base: T, over: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(over)) return (over === undefined ? base : over) as T;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) merged[key] = deepMerge(merged[key], value);
  return merged as T;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
