/** The RPC methods of the contract (API.md §5), each declared once; see method-declaration.ts. */
export * from './method-declaration.js';
export * from './xenopsd-methods.js';
export * from './seed-methods.js';
