/**
 * The `none` driver: no hypervisor to ask. Every guest counts as stopped, so its disks are backed up
 * as they are, without stop or start; asking it to start or stop a guest is an error. For datastores
 * of powered-off guests, image folders copied from elsewhere, and the demo.
 */
import { ColdvaultError, type GuestRunState, type HypervisorDriver } from '../../core/index.js';

export class NoneDriver implements HypervisorDriver {
  readonly name = 'none';

  status(): Promise<GuestRunState> {
    return Promise.resolve('stopped');
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  start(vmid: string): Promise<void> {
    return Promise.reject(new ColdvaultError('START_FAILED', `cannot start guest ${vmid}: no hypervisor is configured (hypervisor.driver is 'none')`));
  }
}
