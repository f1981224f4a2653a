// What @walpurge/client (accept side) and the flusher (flush side) must agree on. No bullmq, no pg
// at run time: the read-only client loads this package too (for LuaScript).
export * from './layout.js';
export * from './pending-entry.js';
export * from './job-options.js';
export * from './sql.js';
export * from './queue-redis-safety.js';
export * from './scripts.js';
export { WRITE_BEHIND_ORIGIN, isWriteBehindOrigin } from '@walpurge/rules';
export {
  LuaScript,
  stringArrayReply,
  type LuaScriptArg,
  type LuaScriptHost,
  type LuaScriptOptions,
} from './lua-script.js';
