// Regenerates packages/config/walpurge.schema.json; a unit test fails when it is out of date.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configJsonSchema } from '../json-schema.js';

const target = fileURLToPath(new URL('../../walpurge.schema.json', import.meta.url));
writeFileSync(target, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
console.log(`wrote ${target}`);
