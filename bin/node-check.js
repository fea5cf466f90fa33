// The Node.js version check of every entry point (the `authentik-collector` command and the npm
// scripts): one clear line and exit 1 on a Node.js older than the project needs, instead of a raw
// stack trace later. Plain JavaScript on purpose, so it parses on old Node versions.
//
//   node bin/node-check.js && node test/demo.ts     (npm scripts)
//   import { checkNode } from './node-check.js'    (bin/authentik-collector.js)

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The oldest supported Node.js: the highest `engines.node` of the dependencies (undici 8.13.1). */
export const MIN_NODE = '22.19.0';

/** Whether `version` (e.g. "22.18.1") is at least MIN_NODE. */
export function nodeSupported(version) {
  const have = version.replace(/^v/, '').split('.').map(Number);
  const need = MIN_NODE.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if ((have[i] ?? 0) !== need[i]) return (have[i] ?? 0) > need[i];
  }
  return true;
}

/** The one-line message for an unsupported Node.js. */
export function nodeMessage(version) {
  return (
    `authentik-collector needs Node.js >= ${MIN_NODE} (found ${version.replace(/^v/, '')}). ` +
    'Install Node.js 24 (https://nodejs.org, `nvm install 24`, or `npm install -g --prefix ~/.local/node24 node@24`) and put it first in PATH.\n'
  );
}

/** Exits with the message when the running Node.js is too old. */
export function checkNode(version = process.versions.node) {
  if (!nodeSupported(version)) {
    process.stderr.write(nodeMessage(version));
    process.exit(1);
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) checkNode();
