#!/usr/bin/env node
// Entry point of the `authentik-collector` command. In a checkout (sources present, not inside
// node_modules) it runs the TypeScript sources directly (Node >= 22.18 strips types of files outside
// node_modules), so a stale dist/ can never shadow the code. An installed package (inside
// node_modules, where Node does not strip types) runs the compiled tree built by `npm pack`'s
// `prepack` (`npm run build`). AUTHENTIK_COLLECTOR_FROM_DIST=1 forces the compiled tree.
// Plain JavaScript on purpose: it must parse on old Node versions to print a clear message.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const parts = process.versions.node.split('.').map(Number);
const major = parts[0];
const minor = parts[1];
const dist = new URL('../dist/runtime/cli/main.js', import.meta.url);
const source = new URL('../runtime/cli/main.ts', import.meta.url);
const sourcePath = fileURLToPath(source);
const fromSource =
  process.env.AUTHENTIK_COLLECTOR_FROM_DIST !== '1' &&
  existsSync(sourcePath) &&
  (!sourcePath.split(/[\\/]/).includes('node_modules') || !existsSync(fileURLToPath(dist)));
const stripsTypes = major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18);

if (major < 22 || (fromSource && !stripsTypes)) {
  process.stderr.write(
    'authentik-collector needs Node.js >= 22.18 (found ' +
      process.versions.node +
      (fromSource
        ? '; running from the TypeScript sources needs built-in type stripping). Install a newer Node.js, or run `npm run build` and use Node.js >= 22.\n'
        : '). Install a newer Node.js.\n'),
  );
  process.exit(1);
}

const { reexecWithRuntimeFlags } = await import('./node-flags.js');
reexecWithRuntimeFlags();

const { cli } = await import((fromSource ? source : dist).href);
await cli(process.argv.slice(2));
