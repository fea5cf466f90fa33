/**
 * Persistent state of the processor, per authentik instance (the records' `server.address`): the last
 * known state of every user and group, whether the first complete listing (the baseline) was seen,
 * and how many events of each user were shipped. Stored as JSON values through a storage extension
 * client (keys `<instance>/users`, `<instance>/groups`, `<instance>/counts`), or in memory.
 */
import type { Logger, StorageClient } from '../../runtime/component.ts';
import { errorMessage } from '../../runtime/errors.ts';
import type { GroupState, UserState } from './diff.ts';

interface UsersJson {
  v: 1;
  ready: boolean;
  users: UserState[];
}
interface GroupsJson {
  v: 1;
  ready: boolean;
  groups: GroupState[];
}
interface CountsJson {
  v: 1;
  counts: [number, number][];
}

const isObj = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);
const isStrArr = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string');
const isStrOrNull = (x: unknown) => x === null || typeof x === 'string';

function isUser(x: unknown): x is UserState {
  if (!isObj(x)) return false;
  return (
    Number.isSafeInteger(x.pk) &&
    isStrOrNull(x.uuid) &&
    typeof x.username === 'string' &&
    typeof x.name === 'string' &&
    typeof x.email === 'string' &&
    typeof x.is_active === 'boolean' &&
    typeof x.is_superuser === 'boolean' &&
    isStrOrNull(x.type) &&
    isStrArr(x.groups) &&
    isStrOrNull(x.password_change_date) &&
    isStrOrNull(x.last_updated) &&
    Number.isSafeInteger(x.rev)
  );
}

function isGroup(x: unknown): x is GroupState {
  return (
    isObj(x) &&
    typeof x.pk === 'string' &&
    typeof x.name === 'string' &&
    typeof x.is_superuser === 'boolean' &&
    isStrArr(x.parents) &&
    Number.isSafeInteger(x.rev)
  );
}

/** What is known of one authentik instance. */
export class InstanceState {
  users = new Map<number, UserState>();
  groups = new Map<string, GroupState>();
  counts = new Map<number, number>();
  usersReady = false;
  groupsReady = false;
  dirtyUsers = false;
  dirtyGroups = false;
  dirtyCounts = false;

  /** Applies delivered changes (`null` = deleted). */
  commit(
    users: Map<number, UserState | null> | undefined,
    groups: Map<string, GroupState | null> | undefined,
    ready: Set<'users' | 'groups'> | undefined,
  ): void {
    for (const [pk, u] of users ?? []) {
      if (u === null) {
        this.users.delete(pk);
        if (this.counts.delete(pk)) this.dirtyCounts = true;
      } else this.users.set(pk, u);
      this.dirtyUsers = true;
    }
    for (const [pk, g] of groups ?? []) {
      if (g === null) this.groups.delete(pk);
      else this.groups.set(pk, g);
      this.dirtyGroups = true;
    }
    if (ready?.has('users') && !this.usersReady) {
      this.usersReady = true;
      this.dirtyUsers = true;
    }
    if (ready?.has('groups') && !this.groupsReady) {
      this.groupsReady = true;
      this.dirtyGroups = true;
    }
  }

  addCounts(m: Map<number, number>): void {
    for (const [pk, n] of m) this.counts.set(pk, (this.counts.get(pk) ?? 0) + n);
    if (m.size > 0) this.dirtyCounts = true;
  }
}

/** Loads and saves {@link InstanceState}s. */
export class InstanceStore {
  readonly #client: StorageClient | undefined;
  readonly #log: Logger;
  readonly #states = new Map<string, Promise<InstanceState>>();
  #saving: Promise<void> = Promise.resolve();

  constructor(client: StorageClient | undefined, log: Logger) {
    this.#client = client;
    this.#log = log;
  }

  get(instance: string): Promise<InstanceState> {
    let p = this.#states.get(instance);
    if (!p) {
      p = this.#load(instance);
      this.#states.set(instance, p);
      // A state that could not be read is read again at the next call (the operator may have fixed it).
      p.catch(() => this.#states.delete(instance));
    }
    return p;
  }

  async #read(key: string): Promise<unknown> {
    if (!this.#client) return undefined;
    const buf = await this.#client.get(key);
    if (buf === undefined) return undefined;
    try {
      return JSON.parse(buf.toString('utf8')) as unknown;
    } catch (e) {
      throw new Error(
        `authentik_changes: stored state "${key}" is not valid JSON (${errorMessage(e)}); delete it to start a new baseline`,
        { cause: e },
      );
    }
  }

  /** A stored `{v: 1, ready, <name>: [...]}` list, checked item by item; undefined when absent. */
  async #readList<T>(
    instance: string,
    name: 'users' | 'groups',
    isItem: (x: unknown) => x is T,
  ): Promise<{ ready: boolean; items: T[] } | undefined> {
    const key = `${instance}/${name}`;
    const j = await this.#read(key);
    if (j === undefined) return undefined;
    const items = isObj(j) ? j[name] : undefined;
    if (
      !isObj(j) ||
      j.v !== 1 ||
      typeof j.ready !== 'boolean' ||
      !Array.isArray(items) ||
      !items.every(isItem)
    ) {
      throw new Error(
        `authentik_changes: stored state "${key}" has an unexpected shape; delete it to start a new baseline`,
      );
    }
    return { ready: j.ready, items };
  }

  async #load(instance: string): Promise<InstanceState> {
    const st = new InstanceState();
    const users = await this.#readList(instance, 'users', isUser);
    if (users) {
      st.usersReady = users.ready;
      for (const x of users.items) st.users.set(x.pk, x);
    }
    const groups = await this.#readList(instance, 'groups', isGroup);
    if (groups) {
      st.groupsReady = groups.ready;
      for (const x of groups.items) st.groups.set(x.pk, x);
    }
    const c = await this.#read(`${instance}/counts`);
    if (c !== undefined) {
      const ok =
        isObj(c) &&
        c.v === 1 &&
        Array.isArray(c.counts) &&
        c.counts.every(
          (p) =>
            Array.isArray(p) && p.length === 2 && Number.isSafeInteger(p[0]) && Number.isSafeInteger(p[1]),
        );
      if (!ok) {
        this.#log.warn(
          `authentik_changes: stored event counts "${instance}/counts" are damaged; counting starts again at 0`,
        );
      } else for (const [pk, n] of (c as unknown as CountsJson).counts) st.counts.set(pk, n);
    }
    if (this.#client) {
      this.#log.info('authentik_changes: state loaded', {
        instance,
        users: st.users.size,
        groups: st.groups.size,
        baseline: st.usersReady && st.groupsReady ? 'complete' : 'pending',
      });
    }
    return st;
  }

  #write(key: string, value: unknown): Promise<void> {
    const client = this.#client;
    if (!client) return Promise.resolve();
    const buf = Buffer.from(JSON.stringify(value));
    const p = this.#saving.then(() => client.set(key, buf));
    this.#saving = p.catch(() => undefined);
    return p;
  }

  /** Writes the users and groups of these instances when they changed (counts too when dirty). */
  async persist(instances: string[]): Promise<void> {
    const writes: Promise<void>[] = [];
    for (const inst of instances) {
      const st = await this.get(inst);
      if (st.dirtyUsers) {
        st.dirtyUsers = false;
        const j: UsersJson = { v: 1, ready: st.usersReady, users: [...st.users.values()] };
        writes.push(this.#write(`${inst}/users`, j));
      }
      if (st.dirtyGroups) {
        st.dirtyGroups = false;
        const j: GroupsJson = { v: 1, ready: st.groupsReady, groups: [...st.groups.values()] };
        writes.push(this.#write(`${inst}/groups`, j));
      }
      if (st.dirtyCounts) writes.push(this.#writeCounts(inst, st));
    }
    await Promise.all(writes);
  }

  #writeCounts(inst: string, st: InstanceState): Promise<void> {
    st.dirtyCounts = false;
    const j: CountsJson = { v: 1, counts: [...st.counts.entries()] };
    return this.#write(`${inst}/counts`, j);
  }

  /** Writes the event counts that changed since the last write (timer and shutdown). */
  async flushCounts(): Promise<void> {
    const writes: Promise<void>[] = [];
    for (const [inst, p] of this.#states) {
      let st: InstanceState;
      try {
        st = await p;
      } catch {
        continue;
      }
      if (st.dirtyCounts) writes.push(this.#writeCounts(inst, st));
    }
    try {
      await Promise.all(writes);
    } catch (e) {
      this.#log.error('authentik_changes: cannot persist the event counts', { reason: errorMessage(e) });
    }
  }

  /** Waits for pending writes. */
  async idle(): Promise<void> {
    await this.#saving;
  }
}
