#!/usr/bin/env node
// Entry point of the `authentik-collector` command. Runs the compiled tree (dist/) when it exists,
// otherwise the TypeScript sources directly (Node >= 22.18 strips types of files outside
// node_modules). Set AUTHENTIK_COLLECTOR_FROM_SOURCE=1 to prefer the sources over a stale dist/.
// Plain JavaScript on purpose: it must parse on old Node versions to print a clear message.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const parts = process.versions.node.split('.').map(Number);
const major = parts[0];
const minor = parts[1];
const dist = new URL('../dist/runtime/cli/main.js', import.meta.url);
const source = new URL('../runtime/cli/main.ts', import.meta.url);
const fromSource = process.env.AUTHENTIK_COLLECTOR_FROM_SOURCE === '1' || !existsSync(fileURLToPath(dist));
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

const { cli } = await import((fromSource ? source : dist).href);
await cli(process.argv.slice(2));
