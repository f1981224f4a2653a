import { z } from 'zod';
import { RedisTlsConfig, redisTlsProblem } from './tls.js';

export const RedisConfig = z
  .strictObject({
    url: z.string().min(1).describe('Cache Redis URL (redis:// or rediss:// for TLS). Usually ${REDIS_URL}.'),
    tls: RedisTlsConfig.optional().describe(
      "TLS to the cache Redis: CA, client certificate, expected name. Needs a rediss:// `url`; rediss:// alone verifies against Node's public CAs.",
    ),
    cluster: z.boolean().default(false).describe('Treat `url` as a seed node of a Redis Cluster.'),
    keyPrefix: z
      .string()
      .default('')
      .describe('Prefix prepended to every key, pattern and tag walpurge touches.'),
  })
  .superRefine((redis, ctx) => {
    const problem = redisTlsProblem(redis.url, redis.tls);
    if (problem) ctx.addIssue({ code: 'custom', path: ['tls'], message: problem });
  });
export type RedisConfig = z.infer<typeof RedisConfig>;
