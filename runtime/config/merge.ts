/**
 * Deep merge of several config files, as the OTel Collector does with several `--config`: maps merge
 * key by key, the last file wins for everything else (lists are replaced, not appended). The
 * {@link SourceMap} follows: a replaced value points at the file that set it.
 */
import { isPlainMap, setOwn } from './source.ts';
import type { ConfigPath, SourceMap } from './source.ts';

/** A loaded config: plain value plus where each part came from. */
export interface SourcedValue {
  value: unknown;
  map: SourceMap;
}

/** Merges `over` into `base` (neither is modified). */
export function mergeSourced(base: SourcedValue, over: SourcedValue): SourcedValue {
  const map = base.map.clone();
  const value = mergeValue(base.value, over.value, [], map, over.map);
  return { value, map };
}

function mergeValue(a: unknown, b: unknown, path: ConfigPath, map: SourceMap, bmap: SourceMap): unknown {
  if (isPlainMap(a) && (isPlainMap(b) || b === null)) {
    // `key:` with no value in a later file means "no change", not "delete".
    if (b === null) return a;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(a)) setOwn(out, k, v);
    for (const [k, v] of Object.entries(b)) {
      const childPath = [...path, k];
      if (Object.hasOwn(out, k)) {
        setOwn(out, k, mergeValue(out[k], v, childPath, map, bmap));
      } else {
        setOwn(out, k, v);
        map.copyUnder(bmap, childPath);
      }
    }
    return out;
  }
  map.deleteUnder(path);
  map.copyUnder(bmap, path);
  return b;
}
