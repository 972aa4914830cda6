/**
 * routes: the API v1 routes, one file per resource (backups and restores, guests, devices, jobs,
 * metrics, the overview, the session, status, tasks, and a store's uploads and reads: the remote datastore protocol). Each registers its routes with a schema and an access rule
 * (auth/access.ts); app.ts installs them all.
 */
export * from './backups.js';
export * from './devices.js';
export * from './guests.js';
export * from './jobs.js';
export * from './metrics.js';
export * from './overview.js';
export * from './session.js';
export * from './status.js';
export * from './tasks.js';
export { storeUploadRoutes } from './store-uploads.js';
export { storeReadRoutes } from './store-reads.js';
export { storeLeaseRoutes } from './store-leases.js';
export { storeDeviceRoutes } from './store-devices.js';
