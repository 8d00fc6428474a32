import type { Backend } from './backend.js';
import { QemuBackend, type QemuBackendOptions } from './qemu/qemu-backend.js';
import { SimulatorBackend } from './simulator/simulator.js';

/** What the command line says about each backend (`xenopsd --qemu-*`). */
export interface BackendOptions {
  readonly qemu?: QemuBackendOptions;
}

/** The backends `xenopsd --backend NAME` can run, by name. */
const FACTORIES = {
  simulator: (): Backend => new SimulatorBackend(),
  qemu: (options: BackendOptions): Backend => new QemuBackend(options.qemu),
} as const;

export type BackendName = keyof typeof FACTORIES;
export const BACKEND_NAMES: readonly BackendName[] = Object.keys(FACTORIES) as BackendName[];

export class UnknownBackendError extends Error {
  override readonly name = 'UnknownBackendError';
  readonly code = 'UNKNOWN_BACKEND';
  constructor(readonly backend: string) {
    super(`unknown backend ${JSON.stringify(backend)}: the backends are ${BACKEND_NAMES.join(', ')}`);
  }
}

/** A new, not yet started backend of that name. */
export function createBackend(name: string, options: BackendOptions = {}): Backend {
  const factory = Object.hasOwn(FACTORIES, name) ? FACTORIES[name as BackendName] : undefined;
  if (!factory) throw new UnknownBackendError(name);
  return factory(options);
}
