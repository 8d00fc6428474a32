/**
 * Error values (API.md §6) as a descriptor. Internally an error is an `ErrorValue` in its xenopsd
 * form (bare tag or `[tag, payload]`, errors.ts); the payload types below make the encoders emit
 * the right wire types (e.g. the `30.0` of `Failed_to_shutdown` as a float) and let error values
 * be decoded. The seed encoder applies the mapping of §6.4.
 */
import type { ErrorValue } from '../errors.js';
import { float, int, list, string, toWireOut, tuple, variant, typeError, type Dialect, type VariantType } from './descriptor.js';
import { PowerStateT } from './shared.js';
import type { WireOut } from './wire.js';

const pair = tuple(string, string);
const triple = tuple(string, string, string);

/** The xenopsd catalogue (§6.1). */
export const ErrorCatalogueT = variant(
  'Errors.error',
  {
    Already_exists: pair,
    Does_not_exist: pair,
    Unimplemented: string,
    Domain_not_built: null,
    Invalid_vcpus: int,
    Bad_power_state: tuple(PowerStateT, PowerStateT),
    Failed_to_acknowledge_shutdown_request: null,
    Failed_to_acknowledge_suspend_request: null,
    Failed_to_shutdown: tuple(string, float),
    Failed_to_suspend: tuple(string, float),
    Device_is_connected: null,
    Device_not_connected: null,
    Media_not_ejectable: null,
    Cancelled: string,
    Failed_to_contact_remote_service: string,
    Internal_error: string,
    Device_detach_rejected: triple,
    Media_present: null,
    Media_not_present: null,
    No_bootable_device: null,
    Bootloader_error: pair,
    Cannot_free_this_much_memory: tuple(int, int),
    Vms_failed_to_cooperate: list(string),
    IO_error: null,
    Hook_failed: tuple(string, string, string, string),
    Not_enough_memory: int,
    Storage_backend_error: tuple(string, list(string)),
    PCIBack_not_loaded: null,
    Failed_to_run_script: string,
    Failed_to_start_emulator: triple,
    Ballooning_timeout_before_migration: null,
    Unknown_error: null,
  },
  // §6.1: what a decoder yields for an unknown error tag.
  { default: 'Unknown_error' },
);

/** Errors whose seed form is the bare tag (their payload is unit in the seed, §6.4). */
const SEED_BARE = new Set(['Already_exists', 'Failed_to_shutdown', 'Device_detach_rejected']);

function encodeXenopsd(e: ErrorValue, d: Dialect): WireOut {
  try {
    return ErrorCatalogueT.encode(e as never, d);
  } catch {
    // A payload of an unexpected shape (or a tag outside the catalogue): send it verbatim.
    return toWireOut(e);
  }
}

function encodeSeed(e: ErrorValue): WireOut {
  const tag = typeof e === 'string' ? e : e[0];
  if (SEED_BARE.has(tag)) return tag;
  if (tag === 'Failed_to_acknowledge_shutdown_request') return 'Failed_to_achnowledge_shutdown_request'; // seed spelling
  if (Array.isArray(e)) {
    const payload = e[1];
    if (tag === 'Invalid_vcpus') return ['Maximum_vcpus', toWireOut(payload)];
    if (tag === 'Bootloader_error' && Array.isArray(payload) && payload.length === 2) {
      return ['Bootloader_error', [toWireOut(payload[0]), [toWireOut(payload[1])]]];
    }
  }
  // Unchanged: Internal_error, Does_not_exist, Unimplemented (keeps its payload), Bad_power_state,
  // the unit errors, and the modern-only errors (Cancelled, ...) which pass through.
  return encodeXenopsd(e, 'seed');
}

/**
 * `ErrorValue` descriptor. Decoding: tags ignoring case; an unknown tag gives `"Unknown_error"`;
 * a known tag whose payload has an unexpected shape keeps the payload verbatim (and a bare known
 * tag stays bare) rather than losing the error. Encoding: xenopsd/internal unchanged; seed per §6.4.
 */
export const ErrorT: VariantType<ErrorValue> = {
  kind: 'variant',
  name: 'error',
  ctors: ErrorCatalogueT.ctors,
  fallback: 'Unknown_error',
  canonicalTag: ErrorCatalogueT.canonicalTag,
  decode(w, path) {
    try {
      return ErrorCatalogueT.decode(w, path) as ErrorValue;
    } catch (e) {
      if (Array.isArray(w) && w.length === 2 && typeof w[0] === 'string') {
        const tag = ErrorCatalogueT.canonicalTag(w[0]);
        if (tag !== undefined) return [tag, w[1]];
      }
      // A bare tag whose xenopsd form has a payload (the seed's unit errors, e.g. "Already_exists").
      if (typeof w === 'string') {
        const tag = ErrorCatalogueT.canonicalTag(w);
        if (tag !== undefined) return tag;
      }
      throw e instanceof Error ? e : typeError(path, 'error');
    }
  },
  encode: (v, d) => (d === 'seed' ? encodeSeed(v) : encodeXenopsd(v, d)),
};
