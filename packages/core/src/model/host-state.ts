import type { LogEvent } from '../events/event.js';

/** Host-level facts folded from `host/<id>` streams: stored settings and armed cancel triggers. */
export interface HostState {
  readonly poolSize?: number;
  readonly settings: ReadonlyArray<readonly [key: string, value: unknown]>;
  readonly cancelTriggers: ReadonlyArray<readonly [dbg: string, point: number]>;
}

export const emptyHost = (): HostState => ({ settings: [], cancelTriggers: [] });

export function evolveHost(host: HostState, event: LogEvent): HostState {
  const { body } = event;
  switch (body.type) {
    case 'HostSettingChanged': {
      const settings = [...host.settings.filter(([k]) => k !== body.key), [body.key, body.value] as const];
      const poolSize = body.key === 'pool_size' && typeof body.value === 'number' ? body.value : host.poolSize;
      return { ...host, settings, ...(poolSize === undefined ? {} : { poolSize }) };
    }
    case 'CancelTriggerSet':
      return { ...host, cancelTriggers: [...host.cancelTriggers.filter(([d]) => d !== body.dbg), [body.dbg, body.point] as const] };
    case 'CancelTriggerUsed':
      return { ...host, cancelTriggers: host.cancelTriggers.filter(([d]) => d !== body.dbg) };
    default:
      return host;
  }
}

export const HOST_STREAM_PREFIX = 'host/';
