// Runs the collector CLI from the compiled tree the benchmark builds into bench/out/dist (see
// buildCollector() in collector.ts), i.e. the JavaScript an installed package runs, without type
// stripping at start-up. Arguments as for bin/authentik-collector.js.
import { argv } from 'node:process';
import { reexecWithRuntimeFlags } from '../../bin/node-flags.js';

// The same V8 flags as bin/authentik-collector.js, so the benchmark measures the shipped process.
reexecWithRuntimeFlags();

const { cli } = await import(new globalThis.URL('../out/dist/runtime/cli/main.js', import.meta.url).href);
await cli(argv.slice(2));
