/**
 * `${VAR}` and `${VAR:-default}` inside YAML string values; `$${` is a literal `${`. Substitution
 * runs on parsed scalars, not raw text, so a value can never inject YAML structure and line numbers
 * in errors stay true.
 */
const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export interface MissingVariable {
  name: string;
}

export function substituteEnv(
  text: string,
  env: Record<string, string | undefined>,
): { value: string; missing: MissingVariable[] } {
  const missing: MissingVariable[] = [];
  const value = text.replace(REFERENCE, (match, name: string | undefined, fallback: string | undefined) => {
    if (match === '$${') return '${';
    const found = env[name as string];
    if (found !== undefined && found !== '') return found;
    if (fallback !== undefined) return fallback;
    missing.push({ name: name as string });
    return '';
  });
  return { value, missing };
}

export function hasEnvReference(text: string): boolean {
  REFERENCE.lastIndex = 0;
  return /\$\{[A-Za-z_]/.test(text);
}
