import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startLocalRedis,
  startLocalRedisCluster,
  type LocalRedis,
  uniqueName,
  waitFor,
  type LocalRedisCluster,
} from '@walpurge/testing';
import { LuaScript } from './lua-script.js';

// Sets KEYS[1] to ARGV[1] and returns what it stored, read back: a round trip through Redis.
const SET_AND_GET = `
redis.call('SET', KEYS[1], ARGV[1])
return redis.call('GET', KEYS[1])`;

// A source no other test has loaded on the connection yet.
function uniqueScript(): string {
  return `-- ${uniqueName('script')}\n${SET_AND_GET}`;
}

async function scriptKnown(redis: Redis, script: LuaScript): Promise<boolean> {
  const [known] = (await redis.script('EXISTS', script.sha)) as number[];
  return known === 1;
}

// Own servers: SCRIPT FLUSH empties the whole script cache, which the shared test Redis must keep.
describe('LuaScript on a standalone Redis', () => {
  let server: LocalRedis;
  let redis: Redis;
  const prefix = `${uniqueName('lua')}:`;

  beforeAll(async () => {
    server = await startLocalRedis();
    redis = new Redis(server.url);
  }, 60_000);
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('runs again after SCRIPT FLUSH (EVALSHA answers NOSCRIPT, EVAL loads it)', async () => {
    const script = new LuaScript(uniqueScript());
    expect(await script.run(redis, [`${prefix}a`], ['first'])).toBe('first');
    expect(await scriptKnown(redis, script)).toBe(true);

    await redis.script('FLUSH');
    expect(await scriptKnown(redis, script)).toBe(false);

    expect(await script.run(redis, [`${prefix}a`], ['second'])).toBe('second');
    expect(await scriptKnown(redis, script)).toBe(true);
    expect(await redis.get(`${prefix}a`)).toBe('second');
  });

  it('replies with Buffers when asked, so binary values survive', async () => {
    const bytes = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x41]);
    const binary = new LuaScript(SET_AND_GET, { replies: 'buffer' });
    const reply = await binary.run(redis, [`${prefix}bin`], [bytes]);
    expect(Buffer.isBuffer(reply)).toBe(true);
    expect((reply as Buffer).equals(bytes)).toBe(true);

    const text = new LuaScript(SET_AND_GET);
    expect(await text.run(redis, [`${prefix}text`], ['plain'])).toBe('plain');
  });

  it('two instances of one source share the connection', async () => {
    const source = uniqueScript();
    const [one, two] = [new LuaScript(source), new LuaScript(source, { replies: 'buffer' })];
    expect(await one.run(redis, [`${prefix}shared`], ['1'])).toBe('1');
    expect(await two.run(redis, [`${prefix}shared`], ['2'])).toEqual(Buffer.from('2'));
  });

  it('passes script errors through', async () => {
    const failing = new LuaScript(`return redis.error_reply('ERR refused by the script')`);
    await expect(failing.run(redis, [], [])).rejects.toThrow('refused by the script');
  });
});

describe('LuaScript on a Redis Cluster', () => {
  let cluster: LocalRedisCluster;
  let client: Cluster;
  let masters: Redis[];

  beforeAll(async () => {
    cluster = await startLocalRedisCluster({ masters: 3 });
    client = new Cluster(cluster.nodes.map(({ port }) => ({ host: '127.0.0.1', port })));
    masters = cluster.nodes.map((node) => new Redis(node.url));
    await waitFor('the cluster client to load the topology', async () => client.status === 'ready');
  }, 60_000);
  afterAll(async () => {
    client?.disconnect();
    for (const master of masters ?? []) master.disconnect();
    await cluster?.stop();
  });

  /** One key per master (asked of the server), so the script must be routed to each of them. */
  async function keyPerMaster(prefix: string): Promise<string[]> {
    const found = new Map<number, string>();
    for (let i = 0; found.size < cluster.nodes.length; i++) {
      const key = `${prefix}${i}`;
      const slot = Number(await masters[0]!.call('CLUSTER', 'KEYSLOT', key));
      const at = cluster.nodes.findIndex(({ slots: [first, last] }) => slot >= first && slot <= last);
      if (!found.has(at)) found.set(at, key);
    }
    return [...found.values()];
  }

  it('routes by key slot to every master and survives SCRIPT FLUSH on all of them', async () => {
    const script = new LuaScript(uniqueScript());
    const keys = await keyPerMaster(`${uniqueName('lua')}:`);
    for (const key of keys) expect(await script.run(client, [key], [`before ${key}`])).toBe(`before ${key}`);

    for (const master of masters) await master.script('FLUSH');
    for (const master of masters) expect(await scriptKnown(master, script)).toBe(false);

    for (const key of keys) expect(await script.run(client, [key], [`after ${key}`])).toBe(`after ${key}`);
    for (const key of keys) expect(await client.get(key)).toBe(`after ${key}`);
  });

  it('runs multi-key scripts whose keys share a hash tag', async () => {
    const tag = `{${uniqueName('row')}}`;
    const copy = new LuaScript(
      `redis.call('SET', KEYS[2], redis.call('GET', KEYS[1])) return redis.call('GET', KEYS[2])`,
    );
    await client.set(`${tag}:from`, 'value');
    expect(await copy.run(client, [`${tag}:from`, `${tag}:to`], [])).toBe('value');
  });
});
