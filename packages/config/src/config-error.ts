import { WalpurgeError, type ErrorCode } from '@walpurge/core';

/** One thing wrong with a config file, located so an editor can jump to it. */
export interface ConfigProblem {
  /** e.g. `rules[2].redis.keys[0]`; empty for the whole file. */
  path: string;
  line?: number;
  column?: number;
  message: string;
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out ? `.${String(segment)}` : String(segment);
  }
  return out;
}

export function formatProblem(file: string, problem: ConfigProblem): string {
  const where = problem.line ? `${file}:${problem.line}:${problem.column ?? 1}` : file;
  return problem.path ? `${where}: ${problem.path}: ${problem.message}` : `${where}: ${problem.message}`;
}

/** All problems of a file at once, so a user fixes them in one go instead of one per run. */
export class ConfigError extends WalpurgeError {
  constructor(
    code: ErrorCode,
    readonly file: string,
    readonly problems: ConfigProblem[],
    hint?: string,
  ) {
    const lines = problems.map((problem) => `  ${formatProblem(file, problem)}`);
    const head = problems.length === 1 ? `${file}: 1 problem` : `${file}: ${problems.length} problems`;
    super(code, `${head}\n${lines.join('\n')}`, { retriable: false, ...(hint ? { hint } : {}) });
    this.name = 'ConfigError';
  }
}
