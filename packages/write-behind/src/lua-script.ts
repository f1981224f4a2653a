import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

export type LuaScriptHost = Redis | Cluster;
export type LuaScriptArg = string | number | Buffer;

export interface LuaScriptOptions {
  /**
   * How bulk replies come back: strings (UTF-8), or Buffers for scripts returning binary values
   * (the read path's compressed payloads).
   */
  replies?: 'string' | 'buffer';
}

type ScriptCommand = (numberOfKeys: number, ...keysAndArgs: LuaScriptArg[]) => Promise<unknown>;

/**
 * A Lua script run through ioredis's `defineCommand`, which sends EVALSHA and falls back to EVAL
 * when the server does not know the script (first use, restart, SCRIPT FLUSH, failover) and routes
 * by key slot on a Cluster; `run` sends one call (no pipeline form yet). The command is defined on each connection the
 * first time the script runs there; its name is derived from the source, so two instances of the
 * same script share one definition.
 */
export class LuaScript {
  readonly sha: string;
  private readonly command: string;
  private readonly replies: 'string' | 'buffer';

  constructor(
    readonly source: string,
    options: LuaScriptOptions = {},
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
    this.command = `walpurge_${this.sha}`;
    this.replies = options.replies ?? 'string';
  }

  run(redis: LuaScriptHost, keys: readonly string[], args: readonly LuaScriptArg[]): Promise<unknown> {
    const name = this.replies === 'buffer' ? `${this.command}Buffer` : this.command;
    return this.commandOn(redis, name).call(redis, keys.length, ...keys, ...args);
  }

  private commandOn(redis: LuaScriptHost, name: string): ScriptCommand {
    // defineCommand adds methods ioredis's types cannot know of: look them up by name.
    const methods = redis as unknown as Record<string, ScriptCommand | undefined>;
    if (typeof methods[name] !== 'function') redis.defineCommand(this.command, { lua: this.source });
    const command = methods[name];
    if (typeof command !== 'function') throw new Error(`ioredis did not define the script command ${name}`);
    return command;
  }
}

/** Lua replies of `{ 'word', … }` as strings; anything else is a protocol bug. */
export function stringArrayReply(reply: unknown, what: string): string[] {
  if (!Array.isArray(reply) || !reply.every((item) => typeof item === 'string')) {
    throw new Error(`unexpected reply from ${what}: ${JSON.stringify(reply)}`);
  }
  return reply as string[];
}
