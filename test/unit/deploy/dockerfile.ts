/**
 * A small Dockerfile reader: instructions with line continuations joined, comments dropped, grouped
 * into stages. Enough to check a Dockerfile against the workspace without a Docker engine.
 */
export interface Instruction {
  keyword: string;
  /** Everything after the keyword, continuations joined with single spaces. */
  args: string;
  line: number;
}

export interface Stage {
  name: string | undefined;
  /** The FROM image after ARG defaults are substituted. */
  image: string;
  instructions: Instruction[];
}

export function parseDockerfile(text: string): { globalArgs: Map<string, string>; stages: Stage[] } {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index += 1) {
    const first = lines[index] ?? '';
    if (/^\s*(#|$)/.test(first)) continue;
    const start = index;
    let joined = first;
    while (/\\\s*$/.test(joined) && index + 1 < lines.length) {
      index += 1;
      const next = lines[index] ?? '';
      if (/^\s*#/.test(next)) continue;
      joined = `${joined.replace(/\\\s*$/, '')} ${next.trim()}`;
    }
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(joined);
    if (!match) throw new Error(`Dockerfile line ${start + 1}: cannot parse '${joined}'`);
    instructions.push({
      keyword: (match[1] ?? '').toUpperCase(),
      args: (match[2] ?? '').trim(),
      line: start + 1,
    });
  }
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [image = '', as, name] = instruction.args.split(/\s+/).filter((part) => !part.startsWith('--'));
      const expanded = image.replace(/\$\{?(\w+)\}?/g, (_, arg: string) => globalArgs.get(arg) ?? '');
      stages.push({ name: as?.toUpperCase() === 'AS' ? name : undefined, image: expanded, instructions: [] });
      continue;
    }
    const current = stages.at(-1);
    if (current) current.instructions.push(instruction);
    else if (instruction.keyword === 'ARG') {
      const [key = '', value = ''] = instruction.args.split('=', 2);
      globalArgs.set(key, value);
    } else
      throw new Error(`Dockerfile line ${instruction.line}: ${instruction.keyword} before the first FROM`);
  }
  return { globalArgs, stages };
}

/** `["a", "b"]` exec form, or a shell-form string split on spaces. */
export function execForm(args: string): string[] {
  if (args.startsWith('[')) return JSON.parse(args) as string[];
  return args.split(/\s+/);
}

/** COPY/ADD flags and paths: `--from=build /out /app` → { from: 'build', sources: ['/out'], dest: '/app' }. */
export function copyArgs(args: string): { flags: Map<string, string>; sources: string[]; dest: string } {
  const parts = args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  const flags = new Map<string, string>();
  const paths: string[] = [];
  for (const part of parts) {
    const flag = /^--([a-z-]+)(?:=(.*))?$/.exec(part);
    if (flag) flags.set(flag[1] ?? '', flag[2] ?? '');
    else paths.push(part);
  }
  const dest = paths.pop();
  if (!dest || paths.length === 0) throw new Error(`COPY ${args}: needs sources and a destination`);
  return { flags, sources: paths, dest };
}
