import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { KafkaConfig } from './schema/kafka.js';

export interface KafkaFileProblem {
  path: PropertyKey[];
  message: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----/g;
const EXPECTED: Record<'ca' | 'cert' | 'key', RegExp> = {
  ca: /CERTIFICATE/,
  cert: /CERTIFICATE/,
  key: /PRIVATE KEY/,
};

/**
 * Makes kafka's file paths (TLS PEM files, the OAUTHBEARER token provider) absolute against the
 * config file's directory, as a user reads them next to walpurge.yaml, and checks that each can be
 * read and (PEM files) holds what its option names: a wrong file is refused by `validate` and at
 * start with its line, not later by the TLS handshake of every connection. Problems name the option
 * (the loader prefixes it with its line), never the path: key paths stay out of logs.
 */
export function resolveKafkaFiles(kafka: KafkaConfig, configFile: string): KafkaFileProblem[] {
  const base = dirname(resolve(configFile));
  const absolute = (path: string): string => (isAbsolute(path) ? path : resolve(base, path));
  const problems: KafkaFileProblem[] = [];
  if (typeof kafka.ssl === 'object') {
    for (const option of ['ca', 'cert', 'key'] as const) {
      const path = kafka.ssl[option];
      if (path === undefined) continue;
      kafka.ssl[option] = absolute(path);
      const problem = pemProblem(kafka.ssl[option], EXPECTED[option]);
      if (problem) problems.push({ path: ['kafka', 'ssl', option], message: problem });
    }
  }
  if (kafka.sasl?.mechanism === 'oauthbearer') {
    kafka.sasl.tokenProvider = absolute(kafka.sasl.tokenProvider);
    const problem = unreadable(kafka.sasl.tokenProvider);
    if (problem) problems.push({ path: ['kafka', 'sasl', 'tokenProvider'], message: problem });
  }
  return problems;
}

function unreadable(path: string): string | undefined {
  try {
    readFileSync(path);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return `cannot read the file: ${code === 'ENOENT' ? 'file not found' : (code ?? 'unreadable')}`;
  }
}

/**
 * A PEM file holds what its option names when any of its blocks does: `openssl ecparam -genkey`
 * writes EC PARAMETERS before the key, and a combined file holds a key and certificates in any order.
 */
function pemProblem(path: string, expected: RegExp): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return unreadable(path);
  }
  const blocks = [...text.matchAll(PEM_BLOCK)].map((block) => block[1] ?? '');
  if (blocks.length === 0) return 'the file is not a PEM file (no -----BEGIN …----- block)';
  if (!blocks.some((block) => expected.test(block)))
    return `the file holds a PEM ${blocks.join(' and ')}, not a ${expected.source.toLowerCase()}`;
  return undefined;
}
