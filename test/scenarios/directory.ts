/**
 * Directory changes on a running emulator, made the way authentik makes them: both sides of a
 * membership kept consistent (`User.groups` / `Group.users`), `last_updated` bumped for changes of the
 * user row (not for membership-only changes, like authentik), GDPR deletion of a user's events.
 * Used by the identity change and detection tests.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Emulator, GroupRec, UserRec } from '../emulator/index.ts';
import { isoMicros } from '../emulator/data.ts';

const nowIso = (): string => isoMicros(Date.now() * 1000);

export class DirectoryDriver {
  readonly emu: Emulator;
  constructor(emu: Emulator) {
    this.emu = emu;
  }

  get users(): UserRec[] {
    return this.emu.users.all();
  }
  get groups(): GroupRec[] {
    return this.emu.groups.all();
  }

  user(pk: number): UserRec {
    const u = this.users.find((x) => x.pk === pk);
    if (!u) throw new Error(`no user ${pk}`);
    return u;
  }
  group(pk: string): GroupRec {
    const g = this.groups.find((x) => x.pk === pk);
    if (!g) throw new Error(`no group ${pk}`);
    return g;
  }

  isSuperuser(u: UserRec): boolean {
    return u.groups.some((g) => this.groups.find((x) => x.pk === g)?.is_superuser === true);
  }

  /** Plain users to change: active, internal, no superuser group, not in any group named admin. */
  plainUsers(): UserRec[] {
    return this.users.filter(
      (u) =>
        u.is_active &&
        u.type === 'internal' &&
        !this.isSuperuser(u) &&
        u.username !== 'akadmin' &&
        !u.groups.some((g) => /admin/i.test(this.groups.find((x) => x.pk === g)?.name ?? '')),
    );
  }

  /** The row was written: bumps `last_updated`. */
  #touch(u: UserRec): void {
    this.emu.users.touch(u.pk);
  }

  createUser(username: string, over: Partial<UserRec> = {}): UserRec {
    const template = this.users[this.users.length - 1]!;
    const pk = Math.max(...this.users.map((u) => u.pk)) + 1;
    const now = nowIso();
    const u: UserRec = {
      ...template,
      pk,
      username,
      name: username,
      email: `${username}@example.com`,
      is_active: true,
      last_login: null,
      date_joined: now,
      groups: [],
      roles: [],
      attributes: {},
      uid: createHash('sha256').update(`${pk}-emulator`).digest('hex'),
      path: 'users',
      type: 'internal',
      uuid: randomUUID(),
      password_change_date: now,
      last_updated: now,
      lastUpdatedUs: Date.now() * 1000,
      ...over,
    };
    this.users.push(u);
    for (const g of u.groups) this.group(g).users.push(u.pk);
    this.#touch(u);
    return u;
  }

  setActive(pk: number, active: boolean): void {
    const u = this.user(pk);
    u.is_active = active;
    this.#touch(u);
  }
  setEmail(pk: number, email: string): void {
    const u = this.user(pk);
    u.email = email;
    this.#touch(u);
  }
  setUsername(pk: number, username: string): void {
    const u = this.user(pk);
    u.username = username;
    this.#touch(u);
  }
  setName(pk: number, name: string): void {
    const u = this.user(pk);
    u.name = name;
    this.#touch(u);
  }
  setType(pk: number, type: UserRec['type']): void {
    const u = this.user(pk);
    u.type = type;
    this.#touch(u);
  }
  changePassword(pk: number): void {
    const u = this.user(pk);
    u.password_change_date = nowIso();
    this.#touch(u);
  }
  /** Membership only: authentik does not bump `last_updated` for it. */
  addToGroup(pk: number, group: string): void {
    const u = this.user(pk);
    const g = this.group(group);
    if (!u.groups.includes(group)) u.groups.push(group);
    if (!g.users.includes(pk)) g.users.push(pk);
  }
  removeFromGroup(pk: number, group: string): void {
    const u = this.user(pk);
    const g = this.group(group);
    u.groups = u.groups.filter((x) => x !== group);
    g.users = g.users.filter((x) => x !== pk);
  }
  /** Deletes the user and (GDPR setting, authentik's default) all of its events. */
  deleteUser(pk: number): void {
    if (!this.emu.users.remove(pk, true)) throw new Error(`no user ${pk}`);
  }

  createGroup(name: string, over: Partial<GroupRec> = {}): GroupRec {
    const pk = randomUUID();
    const g: GroupRec = {
      pk,
      num_pk: Number(BigInt(`0x${pk.replace(/-/g, '')}`) % 100000n),
      name,
      is_superuser: false,
      parent: null,
      users: [],
      attributes: {},
      roles: [],
      ...over,
    };
    this.groups.push(g);
    for (const u of g.users) {
      const rec = this.user(u);
      if (!rec.groups.includes(pk)) rec.groups.push(pk);
    }
    return g;
  }
  renameGroup(pk: string, name: string): void {
    this.group(pk).name = name;
  }
  setParent(pk: string, parent: string | null): void {
    this.group(pk).parent = parent;
  }
  setGroupSuperuser(pk: string, on: boolean): void {
    this.group(pk).is_superuser = on;
  }
  deleteGroup(pk: string): void {
    const i = this.groups.findIndex((g) => g.pk === pk);
    if (i < 0) throw new Error(`no group ${pk}`);
    this.groups.splice(i, 1);
    for (const u of this.users) u.groups = u.groups.filter((g) => g !== pk);
    for (const g of this.groups) if (g.parent === pk) g.parent = null;
  }
}
