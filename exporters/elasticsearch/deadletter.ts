/**
 * The dead-letter file: one NDJSON line per permanently rejected document,
 * `{"@timestamp", "index", "document_id", "status", "error": {...}, "document": {...}}`.
 * Appends are serialised and fsynced before `write` resolves.
 */
import { mkdir, open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface DeadLetter {
  index: string;
  documentId: string | undefined;
  /** HTTP status of the item (0 when the document never reached the server). */
  status: number;
  error: Record<string, unknown>;
  /** The document as JSON text (embedded as is). */
  document: string;
}

export class DeadLetterFile {
  readonly path: string;
  #fh: FileHandle | undefined;
  #chain: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  async open(): Promise<void> {
    if (this.#fh) return;
    await mkdir(dirname(this.path), { recursive: true });
    this.#fh = await open(this.path, 'a', 0o600);
  }

  /** Appends the entries and syncs the file. */
  write(entries: DeadLetter[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    const now = new Date().toISOString();
    let text = '';
    for (const e of entries) {
      text +=
        `{"@timestamp":${JSON.stringify(now)},"index":${JSON.stringify(e.index)},` +
        `"document_id":${JSON.stringify(e.documentId ?? null)},"status":${e.status},` +
        `"error":${JSON.stringify(e.error)},"document":${e.document}}\n`;
    }
    const run = async () => {
      if (!this.#fh) await this.open();
      await this.#fh!.appendFile(text, 'utf8');
      await this.#fh!.datasync();
    };
    const p = this.#chain.then(run, run);
    this.#chain = p.catch(() => undefined);
    return p;
  }

  async close(): Promise<void> {
    await this.#chain;
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close();
  }
}
