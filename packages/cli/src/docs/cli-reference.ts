import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { commands, renderGlobalHelp } from '../cli.js';
import { renderCommandHelp } from '../command.js';

export const cliDocPath = fileURLToPath(new URL('../../../../docs/cli.md', import.meta.url));

const BEGIN =
  '<!-- BEGIN GENERATED: `walpurge --help` of every command (packages/cli/src/bin/write-cli-docs.ts) -->';
const END = '<!-- END GENERATED -->';

/** Every command's --help, exactly as the program prints it, as markdown sections. */
export function renderCliReference(): string {
  const sections = [`## \`walpurge --help\`\n\n\`\`\`text\n${renderGlobalHelp().trimEnd()}\n\`\`\``];
  for (const command of commands) {
    sections.push(
      `## \`walpurge ${command.name}\`\n\n\`\`\`text\n${renderCommandHelp(command).trimEnd()}\n\`\`\``,
    );
  }
  return `${BEGIN}\n\n${sections.join('\n\n')}\n\n${END}`;
}

/** The generated part of docs/cli.md as it is on disk, or undefined when its markers are missing. */
export function generatedPart(doc: string): string | undefined {
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) return undefined;
  return doc.slice(start, end + END.length);
}

/** Rewrites the generated part of docs/cli.md (or appends it), keeping the hand-written text. */
export async function writeCliReference(path = cliDocPath): Promise<void> {
  const doc = await readFile(path, 'utf8').catch(() => '# walpurge command line\n');
  const current = generatedPart(doc);
  const next = current
    ? doc.replace(current, renderCliReference())
    : `${doc.trimEnd()}\n\n${renderCliReference()}\n`;
  await writeFile(path, next);
}
