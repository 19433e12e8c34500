#!/usr/bin/env node
// Installed entry point: runs the TypeScript CLI through tsx's loader.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../scripts/cli.ts");
process.exit(await main(process.argv.slice(2)));
