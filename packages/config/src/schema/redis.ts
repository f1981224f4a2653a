import { z } from 'zod';

export const RedisConfig = z.strictObject({
  url: z.string().min(1).describe('Cache Redis URL (redis:// or rediss://). Usually ${REDIS_URL}.'),
  cluster: z.boolean().default(false).describe('Treat `url` as a seed node of a Redis Cluster.'),
  keyPrefix: z
    .string()
    .default('')
    .describe('Prefix prepended to every key, pattern and tag walpurge touches.'),
});
export type RedisConfig = z.infer<typeof RedisConfig>;
