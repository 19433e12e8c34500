#!/usr/bin/env -S npx tsx
// `diagram [--out docs/machines]`: writes every machine as a Mermaid
// stateDiagram-v2, generated from the machine definitions (lib/diagram.ts).
// `--check` writes nothing and fails when a file is missing or stale.
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { renderDiagrams } from "../lib/diagram.ts";

export const DEFAULT_DIAGRAM_DIR = "docs/machines";

/** Files of `dir` that differ from what the machines generate (missing, stale or left over). */
export async function staleDiagrams(dir = DEFAULT_DIAGRAM_DIR): Promise<string[]> {
  const expected = renderDiagrams();
  const present = await readdir(dir).catch(() => [] as string[]);
  const stale: string[] = [];
  for (const [name, content] of expected) {
    const current = await readFile(join(dir, name), "utf8").catch(() => undefined);
    if (current !== content) stale.push(join(dir, name));
  }
  for (const name of present) if (name.endsWith(".mmd") && !expected.has(name)) stale.push(join(dir, name));
  return stale;
}

/** Writes every diagram into `dir` (removing .mmd files of machines that no longer exist); returns the paths written. */
export async function writeDiagrams(dir = DEFAULT_DIAGRAM_DIR): Promise<string[]> {
  const expected = renderDiagrams();
  await mkdir(dir, { recursive: true });
  for (const name of await readdir(dir)) if (name.endsWith(".mmd") && !expected.has(name)) await rm(join(dir, name));
  const written: string[] = [];
  for (const [name, content] of expected) {
    await writeFile(join(dir, name), content);
    written.push(join(dir, name));
  }
  return written;
}

/** The `diagram` command: `[--out DIR] [--check]`; resolves to the exit code. */
export async function diagramCommand(options: { out?: string; check?: boolean; stdout?: NodeJS.WritableStream; stderr?: NodeJS.WritableStream } = {}): Promise<number> {
  const dir = options.out ?? DEFAULT_DIAGRAM_DIR;
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  if (options.check) {
    const stale = await staleDiagrams(dir);
    if (stale.length === 0) {
      stdout.write(`${dir}: up to date\n`);
      return 0;
    }
    stderr.write(`${dir}: stale or missing: ${stale.join(", ")}; regenerate with \`npx tsx scripts/cli.ts diagram --out ${dir}\`\n`);
    return 1;
  }
  for (const path of await writeDiagrams(dir)) stdout.write(`wrote ${path}\n`);
  return 0;
}

const isEntry = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/scripts\//, "/scripts/"));
if (isEntry) {
  const { values } = parseArgs({ options: { out: { type: "string" }, check: { type: "boolean" } } });
  diagramCommand({ out: values.out, check: values.check }).then((code) => process.exit(code));
}
