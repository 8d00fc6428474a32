/** The IDL: every API type declared once as a runtime descriptor (see descriptor.ts for the model). */
export * from './wire.js';
export * from './descriptor.js';
export * from './dict.js';
export * from './arguments.js';
export * from './shared.js';
export * from './vm.js';
export * from './devices.js';
export * from './metadata.js';
export * from './task.js';
export * from './error-value.js';
export * from './dynamic.js';
export * from './host.js';
export * from './wire-checks.js';
