export * from './errors.js';
export type * from './types.js';
export { QmpClient, type QmpClientEvents } from './qmp-client.js';
export { QemuProcess, qemuPaths, baseArgs, DEFAULT_QEMU_BINARY, type QemuPaths } from './qemu-process.js';
export { SerialConsole } from './serial-console.js';
export { guestImage, guestImageDir, tinyGuestArgs, GUEST_MAC, ROOT_PORTS, type GuestImage } from './tiny-guest.js';
