/** What route modules get: the dependencies, plus the auth stores and the runner made from them. */
import type { HypervisorDriver } from '../core/hypervisor.js';
import type { LoginLimiter } from './auth/rate-limit.js';
import type { SessionStore } from './auth/sessions.js';
import type { TokenStore } from './auth/tokens.js';
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
