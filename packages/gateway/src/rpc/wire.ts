/**
 * The gateway's single import point for the codec-neutral value tree and the error helpers of
 * `@xenops/core` (every file under `rpc/` and `http/` imports these names from here).
 */
export { RpcDouble, isWireObject, isWireStruct, parseJsonWire, struct, wireToJson } from '@xenops/core';
export {
  IllFormedStringError,
  MAX_WIRE_NESTING,
  NestingLimitError,
  findIllFormedString,
  jsonMayHoldIllFormedString,
  jsonNestingExceeds,
  singleLine,
  wirePath,
} from '@xenops/core';
export type { WireIn, WireOut, WireStruct } from '@xenops/core';
export { XenopsError, describeError, toErrorValue } from '@xenops/core';
export type { ErrorValue } from '@xenops/core';
