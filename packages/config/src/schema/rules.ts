import { z } from 'zod';
import { parseTemplate, TemplateSyntaxError } from '../template.js';

const template = z.string().superRefine((text, ctx) => {
  try {
    parseTemplate(text);
  } catch (error) {
    if (error instanceof TemplateSyntaxError) ctx.addIssue({ code: 'custom', message: error.message });
    else throw error;
  }
});

export const RuleOperation = z.enum(['insert', 'update', 'delete', 'truncate']);
export type RuleOperation = z.infer<typeof RuleOperation>;

/**
 * `tag:` and `ns:` under redis.keyPrefix hold walpurge's tag sets and namespace versions: a key or
 * pattern there would delete them (a tag set's members then never purged, a version reset).
 */
const RESERVED_SEGMENTS = ['tag:', 'ns:'] as const;
const cacheEntryTemplate = template.superRefine((text, ctx) => {
  const reserved = RESERVED_SEGMENTS.find((segment) => text.startsWith(segment));
  if (reserved)
    ctx.addIssue({
      code: 'custom',
      message: `"${text}" starts with '${reserved}', where walpurge keeps its ${reserved === 'tag:' ? 'tag sets' : 'namespace versions'}: use tags or namespaces for those, and another prefix for cache entries`,
    });
});

export const RedisTargets = z.strictObject({
  keys: z.array(cacheEntryTemplate).default([]).describe('Exact keys to UNLINK.'),
  patterns: z
    .array(cacheEntryTemplate)
    .default([])
    .describe('Glob patterns purged with SCAN MATCH + UNLINK; row values are glob-escaped.'),
  tags: z
    .array(template)
    .default([])
    .describe('Tag sets (maintained by @walpurge/client) whose member keys are purged.'),
  namespaces: z
    .array(template)
    .default([])
    .describe('Versioned key namespaces (read by @walpurge/client) whose version is given a fresh value.'),
});
export type RedisTargets = z.infer<typeof RedisTargets>;

export const CdnTargets = z.strictObject({
  urls: z.array(template).default([]).describe('URLs to purge.'),
  tags: z.array(template).default([]).describe('Cache tags / surrogate keys to purge.'),
  prefixes: z.array(template).default([]).describe('URL prefixes to purge (where the CDN supports it).'),
});
export type CdnTargets = z.infer<typeof CdnTargets>;

export const Rule = z.strictObject({
  table: z
    .string()
    .regex(/^[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)?$/, "must be 'schema.table' or 'table' (public schema)")
    .describe("Table the rule watches: 'schema.table' ('table' means public.table)."),
  name: z
    .string()
    .optional()
    .describe('Name used in logs, metrics and errors; default: the table and index.'),
  on: z
    .array(RuleOperation)
    .min(1)
    .default(['insert', 'update', 'delete', 'truncate'])
    .describe('Operations that trigger the rule.'),
  when: z
    .strictObject({
      changed: z.array(z.string()).min(1).describe('Skip updates that changed none of these columns.'),
    })
    .optional()
    .describe('Extra conditions.'),
  oldValues: z
    .enum(['required', 'ignore-missing'])
    .optional()
    .describe("An update's old {col} value the identity does not send: refused, or accepted."),
  version: z
    .string()
    .regex(/^[A-Za-z_][\w$]*$/, 'must be a column name')
    .optional()
    .describe(
      "Column that orders the row's versions (a counter, or updated_at set by every write); lets the consistency observer compare a cached entry with the committed row.",
    ),
  redis: RedisTargets.optional().describe('Redis entries derived from the row.'),
  cdn: CdnTargets.optional().describe('CDN entries derived from the row.'),
  fallback: z
    .strictObject({ redis: RedisTargets.optional(), cdn: CdnTargets.optional() })
    .optional()
    .describe('Purged instead when a template needs an unknown value (TOAST, old value, on truncate).'),
});
export type Rule = z.infer<typeof Rule>;
