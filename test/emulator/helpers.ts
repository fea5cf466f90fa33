/** Small HTTP helpers for the emulator's own tests (plain node:http so faults are observable). */
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { Emulator } from './index.ts';

/** Parsed JSON in tests: deliberately loose. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  raw: Buffer;
  text: string;
  json: Json;
}

export interface GetOptions {
  /** undefined = the emulator's current token; null = no Authorization header */
  token?: string | null;
  authorization?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export function get(emu: Emulator, path: string, o: GetOptions = {}): Promise<Got> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.authorization !== undefined) headers.authorization = o.authorization;
  else if (o.token !== null) headers.authorization = `Bearer ${o.token ?? emu.token}`;
  return new Promise((resolve, reject) => {
    const req = http.request(`${emu.url}${path}`, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('aborted')));
      res.on('end', () => {
        if (!res.complete) {
          reject(new Error('incomplete response'));
          return;
        }
        const raw = Buffer.concat(chunks);
        const body = res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
        const text = body.toString('utf8');
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, raw, text, json: parsed });
      });
    });
    req.on('error', reject);
    if (o.timeoutMs !== undefined) {
      req.setTimeout(o.timeoutMs, () => req.destroy(new Error('client timeout')));
    }
    req.end();
  });
}

/** Follows pagination.next from page 1 and returns every result. */
export async function listAll(emu: Emulator, path: string): Promise<Json[]> {
  const out: Json[] = [];
  let page = 1;
  for (;;) {
    const sep = path.includes('?') ? '&' : '?';
    const r = await get(emu, `${path}${sep}page=${page}`);
    if (r.status !== 200) throw new Error(`status ${r.status}: ${r.text}`);
    out.push(...r.json.results);
    if (r.json.pagination.next === 0) return out;
    page = r.json.pagination.next;
  }
}
