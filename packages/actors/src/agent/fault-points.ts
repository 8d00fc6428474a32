/**
 * Named points where the crash tests kill an agent (`XENOPS_FAULT_POINT=<name>`): the process
 * sends itself SIGKILL there, exactly as `kill -9` at that moment would. Unset (always, outside
 * the tests), a fault point does nothing.
 *
 * - `migration-state-sent`: the source, once the destination has the whole state (the point of
 *   no return), before its teardown and switch-over.
 * - `migration-switched-over`: the source, once the switch-over is in the log, before it tells the
 *   destination.
 * - `migration-receiving`: the destination, when its backend takes the received state.
 */
export type FaultPoint = 'migration-state-sent' | 'migration-switched-over' | 'migration-receiving';

export function faultPoint(point: FaultPoint): void {
  if (process.env.XENOPS_FAULT_POINT !== point) return;
  process.stderr.write(`fault point ${point}: killing this process (XENOPS_FAULT_POINT)\n`);
  process.kill(process.pid, 'SIGKILL');
}
