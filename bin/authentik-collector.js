#!/usr/bin/env node
// Entry point of the `authentik-collector` command. In a checkout (sources present, not inside
// node_modules) it runs the TypeScript sources directly (Node >= 22.19 strips types of files outside
// node_modules), so a stale dist/ can never shadow the code. An installed package (inside
// node_modules, where Node does not strip types) runs the compiled tree built by `npm pack`'s
// `prepack` (`npm run build`). AUTHENTIK_COLLECTOR_FROM_DIST=1 forces the compiled tree.
// Plain JavaScript on purpose: it must parse on old Node versions to print a clear message.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const { checkNode } = await import('./node-check.js');
checkNode();

const dist = new URL('../dist/runtime/cli/main.js', import.meta.url);
const source = new URL('../runtime/cli/main.ts', import.meta.url);
const sourcePath = fileURLToPath(source);
const fromSource =
  process.env.AUTHENTIK_COLLECTOR_FROM_DIST !== '1' &&
  existsSync(sourcePath) &&
  (!sourcePath.split(/[\\/]/).includes('node_modules') || !existsSync(fileURLToPath(dist)));

const { reexecWithRuntimeFlags } = await import('./node-flags.js');
reexecWithRuntimeFlags();

const { cli } = await import((fromSource ? source : dist).href);
await cli(process.argv.slice(2));
