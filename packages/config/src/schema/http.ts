import { z } from 'zod';

export const HttpConfig = z.strictObject({
  port: z
    .number()
    .int()
    .min(0)
    .max(65535)
    .default(9464)
    .describe('Port for /metrics, /healthz and /readyz (0 = any free port).'),
  host: z.string().default('0.0.0.0').describe('Interface the ops server binds to.'),
});
export type HttpConfig = z.infer<typeof HttpConfig>;

export const LogConfig = z.strictObject({
  level: z
    .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
    .default('info')
    .describe('Log level.'),
  pretty: z.boolean().optional().describe('Human-readable logs; default: on when stdout is a terminal.'),
});
export type LogConfig = z.infer<typeof LogConfig>;
