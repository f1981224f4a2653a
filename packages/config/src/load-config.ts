import { readFile } from 'node:fs/promises';
import { isMap, isScalar, LineCounter, parseDocument, Scalar, visit, type Document } from 'yaml';
import type { z } from 'zod';
import { ErrorCode } from '@walpurge/core';
import { ConfigError, formatPath, type ConfigProblem } from './config-error.js';
import { substituteEnv, type SecretFileReader } from './env-substitution.js';
import { crossSectionProblems, WalpurgeConfig } from './schema/index.js';
import { resolveTlsFiles, tlsFileProblems } from './tls-files.js';

export interface LoadedConfig<T = WalpurgeConfig> {
  config: T;
  file: string;
  /**
   * Sections left out because a variable they need is not set and the caller said it does not read
   * them (`ParseOptions.unusedSections`), with those variables: for a log line, never silent.
   */
  skippedSections: SkippedSection[];
  /** Line/column of a config path, for errors found later (e.g. against the live schema). */
  locate(path: ReadonlyArray<PropertyKey>): { line: number; column: number } | undefined;
  /** A located problem at `path`, ready to put into a ConfigError. */
  problemAt(path: ReadonlyArray<PropertyKey>, message: string): ConfigProblem;
}

export interface SkippedSection {
  section: string;
  /** Unset variables, `VAR_FILE`s and `file:/path`s whose files could not be read. */
  variables: string[];
}

export interface ParseOptions {
  env?: Record<string, string | undefined>;
  /**
   * Top-level sections the caller never reads (a role's process). One of them whose `${VAR}`s are
   * not all set is left out instead of refused, so e.g. a listener pod needs no queue Redis URL.
   * Set variables are substituted as usual and the section is validated.
   */
  unusedSections?: ReadonlySet<string>;
  /** Reads `${file:…}` and `*_FILE` secrets; default: the file system. */
  readSecretFile?: SecretFileReader;
  /**
   * Whether a missing or non-PEM TLS file (database.ssl, the URL's sslrootcert…, redis.tls,
   * flusher.queueRedisTls, kafka.ssl) or a missing Kafka token module refuses the config (default),
   * or is left to the caller (`validate` reports them itself; `explain` needs no certificates).
   * Sections in `unusedSections` are not checked.
   */
  tlsFiles?: 'check' | 'skip';
}

function locator(doc: Document, lineCounter: LineCounter) {
  return (
    path: ReadonlyArray<PropertyKey>,
    keyName?: string,
  ): { line: number; column: number } | undefined => {
    // Walk up to the nearest node that exists: a missing key is reported at its parent.
    for (let depth = path.length; depth >= 0; depth -= 1) {
      const node: unknown = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth) as unknown[], true);
      if (!node || typeof node !== 'object' || !('range' in node)) continue;
      if (keyName && depth === path.length && isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && item.key.value === keyName);
        if (pair && isScalar(pair.key) && pair.key.range) {
          const pos = lineCounter.linePos(pair.key.range[0]);
          return { line: pos.line, column: pos.col };
        }
      }
      const range = (node as { range?: [number, number, number] | null }).range;
      if (range) {
        const pos = lineCounter.linePos(range[0]);
        return { line: pos.line, column: pos.col };
      }
    }
    return undefined;
  };
}

function issuesToProblems(issues: z.core.$ZodIssue[], locate: ReturnType<typeof locator>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        problems.push({
          path: formatPath(path),
          message: `unknown key '${key}'`,
          ...locate(issue.path, key),
        });
      }
      continue;
    }
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const first = issue.errors[0]?.[0];
      if (first) {
        problems.push({
          path: formatPath([...issue.path, ...first.path]),
          message: first.message,
          ...locate([...issue.path, ...first.path]),
        });
        continue;
      }
    }
    problems.push({ path: formatPath(issue.path), message: issue.message, ...locate(issue.path) });
  }
  return problems;
}

/** File order: by line, then column (problems without a position first). */
function byPosition(a: ConfigProblem, b: ConfigProblem): number {
  return (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
}

/** Parses YAML text into a validated config; every problem located by YAML path and line. */
export function parseConfigText<S extends z.ZodType = typeof WalpurgeConfig>(
  text: string,
  file: string,
  options: ParseOptions & { schema?: S } = {},
): LoadedConfig<z.infer<S>> {
  const env = options.env ?? process.env;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const locate = locator(doc, lineCounter);

  if (doc.errors.length > 0) {
    const problems = doc.errors.map((error) => {
      const pos = lineCounter.linePos(error.pos[0]);
      return {
        path: '',
        message: error.message.split('\n')[0] ?? error.message,
        ...(pos ? { line: pos.line, column: pos.col } : {}),
      };
    });
    throw new ConfigError(ErrorCode.ConfigSyntax, file, problems, 'fix the YAML syntax at the line shown');
  }

  const envProblems: ConfigProblem[] = [];
  // Substituted values stay strings (a password of digits is still a password); those that look
  // like a number or boolean are retyped below only where the schema asks for one.
  const substituted = new Set<Scalar>();
  const unusedSections = options.unusedSections ?? new Set<string>();
  const skippedSections: SkippedSection[] = [];
  const sections = isMap(doc.contents) ? [...doc.contents.items] : [];
  for (const pair of sections) {
    const section = isScalar(pair.key) ? String(pair.key.value) : '';
    const missingHere: ConfigProblem[] = [];
    const missingNames = new Set<string>();
    visit(pair.value as Parameters<typeof visit>[0], {
      Scalar(key, node) {
        if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
        const { value, missing, unreadable } = substituteEnv(node.value, env, options.readSecretFile);
        const pos = node.range ? lineCounter.linePos(node.range[0]) : undefined;
        const at = pos ? { line: pos.line, column: pos.col } : {};
        for (const variable of missing) {
          missingNames.add(variable.name);
          missingHere.push({
            path: '',
            message: `environment variable ${variable.name} is not set (write \${${variable.name}:-default} for a default, or set ${variable.name}_FILE to a file holding it)`,
            ...at,
          });
        }
        for (const file of unreadable) {
          missingNames.add(file.variable ? `${file.variable}_FILE` : `file:${file.path}`);
          missingHere.push({
            path: '',
            message: `cannot read ${file.path}${file.variable ? ` (named by ${file.variable}_FILE)` : ''}: ${file.reason}`,
            ...at,
          });
        }
        node.value = value;
        if (node.type === Scalar.PLAIN) substituted.add(node);
      },
    });
    if (missingHere.length === 0) continue;
    if (unusedSections.has(section)) {
      doc.delete(section);
      skippedSections.push({ section, variables: [...missingNames] });
    } else envProblems.push(...missingHere);
  }
  if (envProblems.length > 0) {
    envProblems.sort(byPosition);
    throw new ConfigError(
      ErrorCode.ConfigEnvMissing,
      file,
      envProblems,
      'export the variables, give defaults, or fix the secret files',
    );
  }

  const schema = (options.schema ?? WalpurgeConfig) as S;
  let raw: unknown = doc.toJS() ?? {};
  let result = schema.safeParse(raw);
  if (!result.success && retypeWhereWanted(doc, result.error.issues, substituted)) {
    raw = doc.toJS() ?? {};
    result = schema.safeParse(raw);
  }
  const problems = result.success ? [] : issuesToProblems(result.error.issues, locate);
  if (!options.schema) {
    // A section left out on purpose is not missing (transport: kafka without kafka, for a flusher).
    const skipped = new Set(skippedSections.map((skip) => skip.section));
    for (const extra of crossSectionProblems(raw)) {
      if (skipped.has(String(extra.path[0]))) continue;
      problems.push({ path: formatPath(extra.path), message: extra.message, ...locate(extra.path) });
    }
  }
  if (result.success && !options.schema) {
    const config = result.data as WalpurgeConfig;
    resolveTlsFiles(config, file);
    if (options.tlsFiles !== 'skip')
      for (const extra of tlsFileProblems(config, unusedSections))
        problems.push({ path: formatPath(extra.path), message: extra.message, ...locate(extra.path) });
  }
  if (!result.success || problems.length > 0) {
    problems.sort(byPosition);
    throw new ConfigError(ErrorCode.ConfigInvalid, file, problems);
  }
  return {
    config: result.data as z.infer<S>,
    file,
    skippedSections,
    locate: (path) => locate(path),
    problemAt: (path, message) => ({ path: formatPath(path), message, ...locate(path) }),
  };
}

/**
 * A plain scalar written as `${VAR}` whose value reads as a number or boolean becomes one where the
 * schema rejected it as a string for wanting that type (`port: ${PORT}`), like YAML would have typed
 * it had the value been written in place. Returns whether anything changed.
 */
function retypeWhereWanted(
  doc: Document,
  issues: readonly z.core.$ZodIssue[],
  substituted: ReadonlySet<Scalar>,
): boolean {
  let changed = false;
  // A union (kafka.ssl: boolean or an object) reports the wanted types inside its branches.
  const typeIssues = issues.flatMap((issue) =>
    issue.code === 'invalid_union'
      ? issue.errors
          .flat()
          .flatMap((inner) =>
            inner.code === 'invalid_type' && inner.path.length === 0 ? [{ ...inner, path: issue.path }] : [],
          )
      : [issue],
  );
  for (const issue of typeIssues) {
    if (issue.code !== 'invalid_type') continue;
    const node = doc.getIn(issue.path, true);
    if (!isScalar(node) || !substituted.has(node) || typeof node.value !== 'string') continue;
    const text = node.value;
    if ((issue.expected === 'number' || issue.expected === 'int') && /^-?\d+(\.\d+)?$/.test(text)) {
      node.value = Number(text);
      changed = true;
    } else if (issue.expected === 'boolean' && (text === 'true' || text === 'false')) {
      node.value = text === 'true';
      changed = true;
    }
  }
  return changed;
}

/** Reads and validates a config file. Errors are ConfigError with located problems, never stack traces. */
export async function loadConfig(file: string, options: ParseOptions = {}): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message;
    throw new ConfigError(
      ErrorCode.ConfigNotFound,
      file,
      [{ path: '', message: reason }],
      'pass --config with the path of your walpurge.yaml',
    );
  }
  return parseConfigText(text, file, options);
}
