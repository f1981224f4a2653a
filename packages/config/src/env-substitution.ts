import { readFileSync } from 'node:fs';

/**
 * `${VAR}`, `${VAR:-default}` and `${file:/path}` inside YAML string values; `$${` is a literal `${`.
 * An unset `${VAR}` is read from the file `$VAR_FILE` names when that is set (the Docker and
 * Kubernetes convention for secrets mounted as files). Substitution runs on parsed scalars, not raw
 * text, so a value can never inject YAML structure and line numbers in errors stay true.
 */
const REFERENCE = /\$\$\{|\$\{(?:file:([^}]+)|([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?)\}/g;

export interface MissingVariable {
  name: string;
}

/** A file a value was to be read from, and why it could not be. */
export interface UnreadableFile {
  path: string;
  /** The variable whose `_FILE` named it, when it came from the convention. */
  variable?: string;
  reason: string;
}

/** Reads a secret file; injectable for tests. One trailing newline (as `echo` writes) is dropped. */
export type SecretFileReader = (path: string) => string;

const readSecretFile: SecretFileReader = (path) => readFileSync(path, 'utf8').replace(/\r?\n$/, '');

export function substituteEnv(
  text: string,
  env: Record<string, string | undefined>,
  readFile: SecretFileReader = readSecretFile,
): { value: string; missing: MissingVariable[]; unreadable: UnreadableFile[] } {
  const missing: MissingVariable[] = [];
  const unreadable: UnreadableFile[] = [];
  const fromFile = (path: string, variable?: string): string => {
    try {
      return readFile(path);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      unreadable.push({ path, reason, ...(variable ? { variable } : {}) });
      return '';
    }
  };
  const value = text.replace(
    REFERENCE,
    (match, path: string | undefined, name: string | undefined, fallback: string | undefined) => {
      if (match === '$${') return '${';
      if (path !== undefined) return fromFile(path.trim());
      const variable = name as string;
      const found = env[variable];
      if (found !== undefined && found !== '') return found;
      const file = env[`${variable}_FILE`];
      if (file !== undefined && file !== '') return fromFile(file, variable);
      if (fallback !== undefined) return fallback;
      missing.push({ name: variable });
      return '';
    },
  );
  return { value, missing, unreadable };
}

export function hasEnvReference(text: string): boolean {
  REFERENCE.lastIndex = 0;
  return /\$\{[A-Za-z_]/.test(text);
}
