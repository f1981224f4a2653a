import { z } from 'zod';
import { WalpurgeConfig } from './schema/index.js';

/** JSON Schema of walpurge.yaml for editors (yaml-language-server: `# $schema: …`). */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(WalpurgeConfig, { io: 'input', unrepresentable: 'any' });
  return { ...schema, title: 'walpurge configuration', $id: 'https://walpurge.dev/walpurge.schema.json' };
}
