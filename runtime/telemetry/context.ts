/**
 * Which component is running: the runtime runs every component call (create, start, consume,
 * shutdown) inside {@link componentContext}, so work a component starts in the background inherits
 * its identity. The process-level handlers for unhandled rejections and uncaught exceptions read it to
 * report the failing component instead of crashing.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ComponentKind } from '../component.ts';

/** Identity of a running component. */
export interface ComponentRef {
  kind: ComponentKind;
  id: string;
  pipeline?: string;
}

/** The async context carrying the current component. */
export const componentContext = new AsyncLocalStorage<ComponentRef>();

/** Runs `fn` as `ref` (see {@link componentContext}). */
export function runAs<T>(ref: ComponentRef, fn: () => T): T {
  return componentContext.run(ref, fn);
}

/** The component whose code is running, if known. */
export function currentComponent(): ComponentRef | undefined {
  return componentContext.getStore();
}
