/**
 * Every option path of walpurge.yaml, read from the JSON Schema generated from the zod schema:
 * `database.url`, `kafka.sasl.mechanism`, `rules[].redis.keys`. Shared by the docs coverage test.
 */
export interface OptionPath {
  path: string;
  type: string;
  default?: unknown;
  description?: string;
  required: boolean;
}

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  enum?: unknown[];
  $ref?: string;
  default?: unknown;
  description?: string;
  additionalProperties?: boolean | JsonSchema;
};

function resolve(schema: JsonSchema, root: JsonSchema & { $defs?: Record<string, JsonSchema> }): JsonSchema {
  if (!schema.$ref) return schema;
  const name = schema.$ref.replace(/^#\/(\$defs|definitions)\//, '');
  const target = root.$defs?.[name];
  if (!target) throw new Error(`unresolvable $ref ${schema.$ref}`);
  return { ...resolve(target, root), ...(schema.description ? { description: schema.description } : {}) };
}

function typeName(schema: JsonSchema): string {
  if (schema.enum) return schema.enum.map((value) => JSON.stringify(value)).join(' | ');
  if (Array.isArray(schema.type)) return schema.type.join(' | ');
  if (schema.type === 'array' && schema.items) return `${typeName(schema.items)}[]`;
  if (schema.type) return schema.type;
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants) return variants.map(typeName).join(' | ');
  return 'any';
}

export function collectOptionPaths(root: JsonSchema & { $defs?: Record<string, JsonSchema> }): OptionPath[] {
  const out: OptionPath[] = [];
  const walk = (raw: JsonSchema, prefix: string): void => {
    const schema = resolve(raw, root);
    for (const variant of [...(schema.anyOf ?? []), ...(schema.oneOf ?? []), ...(schema.allOf ?? [])])
      walk(variant, prefix);
    if (schema.items) walk(schema.items, `${prefix}[]`);
    for (const [name, child] of Object.entries(schema.properties ?? {})) {
      const resolved = resolve(child, root);
      const path = prefix ? `${prefix}.${name}` : name;
      out.push({
        path,
        type: typeName(resolved),
        required: (schema.required ?? []).includes(name) && resolved.default === undefined,
        ...(resolved.default !== undefined ? { default: resolved.default } : {}),
        ...(resolved.description ? { description: resolved.description } : {}),
      });
      walk(resolved, path);
    }
  };
  walk(root, '');
  // The same path can be reached through several union variants; keep the first.
  return out.filter((entry, index) => out.findIndex((other) => other.path === entry.path) === index);
}
