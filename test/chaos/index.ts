/**
 * Entry for `node --test test/chaos/` (a folder is loaded through package.json "main"): runs every
 * chaos test file. `node --test 'test/chaos/**\/*.test.ts'` runs the same files directly.
 */
import './bulk-sink.test.ts';
import './chaos.test.ts';
