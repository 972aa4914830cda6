/**
 * dashboard: `coldvault dashboard`, a blessed-contrib terminal dashboard that is a client of the HTTP
 * API only (fetch, `Authorization: Bearer`): throughput chart, running task gauge, rotation table per
 * guest, datastore usage, log tail. It may import core only: everything else it learns over HTTP.
 * api.ts talks HTTP, model.ts turns JSON into rows and series (pure), screen.ts draws, app.ts polls.
 */
export { runDashboard, Dashboard, type DashboardOptions } from './app.js';
export { ApiClient, ApiError } from './api.js';
