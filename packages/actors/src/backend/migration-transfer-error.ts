import { Errors, XenopsError } from '@xenops/core';

/**
 * A migration whose state could not reach its destination (§7.8): the task fails with
 * `Failed_to_contact_remote_service <url>`; the cause (no agent, a refused chunk, a timeout) is
 * kept for the log.
 */
export class MigrationTransferError extends XenopsError {
  constructor(url: string, cause: unknown) {
    super(Errors.failedToContactRemoteService(url).value, { cause });
  }
}
