export { HostAgent, type HostAgentOptions } from './agent/host-agent.js';
export type { Backend, AtomContext } from './backend/backend.js';
export { SimulatorBackend } from './backend/simulator/simulator.js';
export { DomidAllocator } from './backend/simulator/domids.js';
export type { Atom, AtomKind } from './operations/atom.js';
export { planOperation, type Plan } from './operations/plan.js';
export { runTask } from './operations/run-task.js';
export { vmMachine } from './vm/vm-machine.js';
export { VmActor } from './vm/vm-actor.js';
