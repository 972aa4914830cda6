/**
 * boot-test: proves a version boots (issue 15). The version is exported over NBD (read-only, chunks
 * verified), booted in an isolated QEMU (the archived config, snapshot=on, no network), and watched for
 * a success signal (a serial console line, the guest agent's `guest-ping`, or a user script) until a
 * timeout; a screenshot of its screen is kept. A bounded number run at once per state dir (slots.ts);
 * every QEMU, export and socket is gone when a test ends, however it ends (boot-test.ts).
 */
export { runBootTest, screenshotPath, type BootTestOutcome, type BootTestRequest } from './boot-test.js';
export { DEFAULT_EXPECT, describeSignal, type BootSignal } from './signals.js';
export { DEFAULT_MAX_BOOT_TESTS } from './slots.js';
export { QEMU_BINARY } from './qemu-process.js';
