// `npm run build`: the CLI as one JavaScript file for deployment under Node.js,
// dist/fedmsg-migration-tools.mjs, run as `node dist/fedmsg-migration-tools.mjs
// <command> …`. Same code as `npx tsx scripts/cli.ts`, without the TypeScript
// loader (a thread of its own) and without the unused part of the dependencies:
// a bridge starts with about half the memory (`npm run bench`, phase g).
// zeromq stays external: it loads its native addon from its own directory.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

export const BUNDLE = fileURLToPath(new URL("../dist/fedmsg-migration-tools.mjs", import.meta.url));

export async function buildBundle(outfile = BUNDLE): Promise<string> {
  await build({
    entryPoints: [fileURLToPath(new URL("./cli.ts", import.meta.url))],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: ["zeromq"],
    // CommonJS dependencies bundled into an ES module still call require().
    banner: { js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);' },
    logLevel: "warning",
  });
  return outfile;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(`wrote ${await buildBundle(process.argv[2])}\n`);
}
