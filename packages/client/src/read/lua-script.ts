import { LuaScript as SharedLuaScript } from '@walpurge/write-behind';

/**
 * The read path's scripts, with Buffer replies: entries hold compressed payloads, which a UTF-8
 * string would corrupt. `new LuaScript(source).run(redis, keys, args)`.
 */
export class LuaScript extends SharedLuaScript {
  constructor(source: string) {
    super(source, { replies: 'buffer' });
  }
}
