export { HostAgent, type HostAgentOptions } from './agent/host-agent.js';
export type { Backend, BackendCapabilities, BackendHost, EffectContext, KnownDomain, VmView } from './backend/backend.js';
export { BACKEND_NAMES, createBackend, UnknownBackendError, type BackendName } from './backend/backends.js';
export { SimulatorBackend } from './backend/simulator/simulator.js';
export { DomidAllocator } from './backend/simulator/domids.js';
export { runTask } from './operations/run-task.js';
export { vmMachine } from './vm/vm-machine.js';
export { VmActor } from './vm/vm-actor.js';
export * as qemu from './backends/qemu/index.js';
