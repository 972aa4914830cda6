/** What route modules get: the dependencies, plus the auth stores and the runner made from them. */
import type { HypervisorDriver } from '../core/index.js';
import type { LoginLimiter, SessionStore, TokenStore } from './auth/index.js';
import type { Clock, ServerConfig, ServerState } from './deps.js';
import type { TaskRunner } from './runner.js';

export interface RouteContext {
  config: ServerConfig;
  state: ServerState;
  driver: HypervisorDriver;
  clock: Clock;
  runner: TaskRunner;
  tokens: TokenStore;
  sessions: SessionStore;
  limiter: LoginLimiter;
  /** the clock when the server was made (uptime) */
  startedAt: number;
  /** HTTPS: the session cookie is Secure */
  secure: boolean;
}
