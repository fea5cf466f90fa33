/**
 * The `file_storage` extension: one directory, one lock, one sub-directory per component. Values are
 * framed files replaced atomically; an index maps component ids to their storage keys so a renamed
 * component keeps its checkpoint and a changed key is reported.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { once } from '../../component.ts';
import type {
  ComponentKind,
  ComponentSettings,
  Host,
  Logger,
  StorageClient,
  StorageExtension,
} from '../../component.ts';
import { CollectorError, ErrorCode } from '../../errors.ts';
import type { Config } from './config.ts';
import { acquireLock, frame, readIfExists, syncDir, TEMP_PREFIX, unframe, writeAtomic } from './files.ts';

/** Name of the index file inside the storage directory. */
export const INDEX_FILE = 'index.json';

/** Sub-directory (inside a component's directory) handed out by `getDirectory`. */
const FILES_DIR = 'files';

interface IndexEntry {
  /** The stable key the component used, absent when it had none. */
  key?: string;
  /** Name of its data directory. */
  dir: string;
}

interface IndexFile {
  version: 1;
  /** `kind:id` → entry. */
  components: Record<string, IndexEntry>;
}

/** Replaces characters that are unsafe in file names. */
function sanitize(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]/g, '~');
}

/**
 * Directory name of a component's data: from the stable key when given (so it survives renames),
 * otherwise from kind and id.
 */
export function dataDirName(kind: ComponentKind, id: string, stableKey?: string): string {
  if (stableKey === undefined) return `${kind}_${sanitize(id)}`;
  const type = id.split('/')[0] ?? id;
  const hash = createHash('sha256').update(stableKey).digest('hex').slice(0, 16);
  return `${kind}_${sanitize(type)}_${hash}`;
}

/** File name of a value: readable base64url of the key, or a hash for very long keys. */
function valueFileName(key: string): string {
  const b64 = Buffer.from(key, 'utf8').toString('base64url');
  return b64.length <= 200 ? `v_${b64}` : `h_${createHash('sha256').update(key).digest('hex')}`;
}

/** The `file_storage` extension. */
export class FileStorage implements StorageExtension {
  readonly #cfg: Config;
  readonly #logger: Logger;
  readonly #dir: string;
  #release: (() => Promise<void>) | undefined;
  #index: IndexFile = { version: 1, components: {} };
  /** Serialises index updates. */
  #indexChain: Promise<unknown> = Promise.resolve();
  /** Data directory → `kind:id` using it in this run (two components must not share one). */
  readonly #active = new Map<string, string>();
  readonly #clients = new Set<FileStorageClient>();
  #state: 'created' | 'started' | 'stopped' = 'created';

  constructor(settings: ComponentSettings, cfg: Config) {
    this.#cfg = cfg;
    this.#logger = settings.logger;
    this.#dir = resolve(settings.configDir, cfg.directory);
  }

  /** Absolute path of the storage directory. */
  get directory(): string {
    return this.#dir;
  }

  async start(_host: Host): Promise<void> {
    if (this.#state !== 'created') throw new Error('file_storage: start called twice');
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    this.#release = await acquireLock(this.#dir, this.#cfg.timeout, (why) =>
      this.#logger.warn('removed a stale storage lock', { directory: this.#dir, reason: why }),
    );
    this.#index = await this.#loadIndex();
    this.#state = 'started';
  }

  readonly shutdown = once(async () => {
    const wasStarted = this.#state === 'started';
    this.#state = 'stopped';
    await Promise.allSettled([...this.#clients].map((c) => c.close()));
    await this.#indexChain.catch(() => undefined);
    if (wasStarted) await this.#release?.();
  });

  async getClient(kind: ComponentKind, id: string, stableKey?: string): Promise<StorageClient> {
    const dir = await this.#claim(kind, id, stableKey);
    const client = new FileStorageClient(
      dir,
      this.#cfg.fsync,
      this.#logger.child({ storage_client: id }),
      () => {
        this.#clients.delete(client);
        this.#active.delete(dir);
      },
    );
    await client.open();
    this.#clients.add(client);
    return client;
  }

  async getDirectory(kind: ComponentKind, id: string, stableKey?: string): Promise<string> {
    const dir = join(await this.#claim(kind, id, stableKey, true), FILES_DIR);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** Resolves a component's data directory, updating the index and reporting key changes. */
  async #claim(
    kind: ComponentKind,
    id: string,
    stableKey: string | undefined,
    shared = false,
  ): Promise<string> {
    if (this.#state !== 'started') {
      throw new CollectorError(ErrorCode.SHUTTING_DOWN, `file_storage is ${this.#state}, not started`);
    }
    const ref = `${kind}:${id}`;
    const name = dataDirName(kind, id, stableKey);
    const user = this.#active.get(name);
    if (user !== undefined && user !== ref) {
      throw new Error(
        `${kind} ${id} and ${user.split(':').slice(1).join(':')} use the same storage key` +
          `${stableKey === undefined ? '' : ` "${stableKey}"`}; each component needs its own`,
      );
    }
    if (user === ref && !shared) throw new Error(`${kind} ${id} already has an open storage client`);
    if (!shared) this.#active.set(name, ref);
    await this.#updateIndex(ref, id, name, stableKey);
    const dir = join(this.#dir, name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  #updateIndex(ref: string, id: string, name: string, stableKey: string | undefined): Promise<void> {
    const run = async () => {
      const comps = this.#index.components;
      const prev = comps[ref];
      let changed = false;
      if (prev && prev.dir !== name) {
        this.#logger.warn(
          'component is used with a different storage key than before; its old checkpoint is not used',
          {
            component: id,
            previous_key: prev.key ?? null,
            key: stableKey ?? null,
            previous_data: prev.dir,
            data: name,
          },
        );
      } else if (!prev && stableKey !== undefined) {
        for (const [otherRef, e] of Object.entries(comps)) {
          if (otherRef !== ref && e.dir === name && !this.#isActive(otherRef)) {
            this.#logger.info(
              'storage key known under another component id (renamed?); its checkpoint is kept',
              {
                component: id,
                previous_id: otherRef.split(':').slice(1).join(':'),
                key: stableKey,
              },
            );
            delete comps[otherRef];
            changed = true;
          }
        }
      }
      if (!prev || prev.dir !== name || prev.key !== stableKey) {
        comps[ref] = stableKey === undefined ? { dir: name } : { key: stableKey, dir: name };
        changed = true;
      }
      if (changed) {
        await writeAtomic(
          this.#dir,
          INDEX_FILE,
          Buffer.from(JSON.stringify(this.#index, null, 2) + '\n'),
          this.#cfg.fsync,
        );
      }
    };
    const p = this.#indexChain.then(run);
    this.#indexChain = p.catch(() => undefined);
    return p;
  }

  #isActive(ref: string): boolean {
    for (const r of this.#active.values()) if (r === ref) return true;
    return false;
  }

  async #loadIndex(): Promise<IndexFile> {
    const empty: IndexFile = { version: 1, components: {} };
    const data = await readIfExists(join(this.#dir, INDEX_FILE));
    if (data === undefined) return empty;
    try {
      const v = JSON.parse(data.toString('utf8')) as Partial<IndexFile>;
      if (v.version !== 1 || typeof v.components !== 'object' || v.components === null) {
        throw new Error('unexpected shape');
      }
      const components: Record<string, IndexEntry> = {};
      for (const [ref, e] of Object.entries(v.components)) {
        if (e && typeof e.dir === 'string') {
          components[ref] = typeof e.key === 'string' ? { key: e.key, dir: e.dir } : { dir: e.dir };
        }
      }
      return { version: 1, components };
    } catch (err) {
      this.#logger.warn(
        'storage index is unreadable; starting a new one (renames are not detected this time)',
        {
          file: join(this.#dir, INDEX_FILE),
          error: (err as Error).message,
        },
      );
      return empty;
    }
  }
}

/** A key/value client over one directory. Operations run one at a time, in call order. */
export class FileStorageClient implements StorageClient {
  readonly #dir: string;
  readonly #fsync: boolean;
  readonly #logger: Logger;
  readonly #onClose: () => void;
  #chain: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(dir: string, fsync: boolean, logger: Logger, onClose: () => void) {
    this.#dir = dir;
    this.#fsync = fsync;
    this.#logger = logger;
    this.#onClose = onClose;
  }

  /** Removes temp files left by an interrupted `set` (a crash between write and rename). */
  async open(): Promise<void> {
    for (const name of await readdir(this.#dir)) {
      if (name.startsWith(TEMP_PREFIX)) {
        this.#logger.debug('removing unfinished write left by an earlier run', { file: name });
        await rm(join(this.#dir, name), { force: true });
      }
    }
  }

  #run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new CollectorError(ErrorCode.SHUTTING_DOWN, 'storage client is closed'));
    }
    const p = this.#chain.then(fn);
    this.#chain = p.catch(() => undefined);
    return p;
  }

  get(key: string): Promise<Buffer | undefined> {
    return this.#run(async () => {
      const file = join(this.#dir, valueFileName(key));
      const data = await readIfExists(file);
      if (data === undefined) return undefined;
      const r = unframe(data);
      if ('problem' in r) {
        this.#logger.warn('stored value is damaged; treating it as missing', {
          key,
          file,
          problem: r.problem,
        });
        return undefined;
      }
      return Buffer.from(r.value);
    });
  }

  /**
   * Where a value is stored and, when its file exists but is damaged (`get` then answers undefined),
   * why. For components that must tell a damaged value from a missing one (e.g. a checkpoint).
   */
  inspect(key: string): Promise<{ file: string; exists: boolean; problem?: string }> {
    return this.#run(async () => {
      const file = join(this.#dir, valueFileName(key));
      const data = await readIfExists(file);
      if (data === undefined) return { file, exists: false };
      const r = unframe(data);
      return 'problem' in r ? { file, exists: true, problem: String(r.problem) } : { file, exists: true };
    });
  }

  set(key: string, value: Buffer): Promise<void> {
    const data = frame(value);
    return this.#run(() => writeAtomic(this.#dir, valueFileName(key), data, this.#fsync));
  }

  delete(key: string): Promise<void> {
    return this.#run(async () => {
      try {
        await unlink(join(this.#dir, valueFileName(key)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      if (this.#fsync) await syncDir(this.#dir);
    });
  }

  /** Waits for pending operations, then releases the client. Safe to call twice. */
  readonly close = once(async () => {
    this.#closed = true;
    await this.#chain;
    this.#onClose();
  });
}
