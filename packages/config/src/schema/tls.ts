import { readFileSync } from 'node:fs';
import { z } from 'zod';

const CERTIFICATE = /-----BEGIN CERTIFICATE-----/;
const PRIVATE_KEY = /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/;

/** Why the file cannot serve, or undefined. Paths are relative to walpurge's working directory. */
function pemProblem(path: string, expected: RegExp, what: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return `cannot read the ${what} file (${typeof code === 'string' ? code : 'unreadable'})`;
  }
  return expected.test(text) ? undefined : `the ${what} file holds no PEM ${what}`;
}

// A key file's path is not printed: the field's location names it, and paths to keys stay out of logs.
const pemFile = (expected: RegExp, what: string, showPath: boolean): z.ZodString =>
  z
    .string()
    .min(1)
    .superRefine((path, ctx) => {
      const problem = pemProblem(path, expected, what);
      if (problem) ctx.addIssue({ code: 'custom', message: showPath ? `${problem}: ${path}` : problem });
    });

/** PEM file of one or more CA certificates (a provider's bundle may hold many). */
export const CaFile = pemFile(CERTIFICATE, 'certificate', true);
/** PEM file of a client certificate (its chain may follow it). */
export const CertificateFile = pemFile(CERTIFICATE, 'certificate', true);
/** PEM file of an unencrypted private key. */
export const PrivateKeyFile = pemFile(PRIVATE_KEY, 'private key', false);

/** TLS towards a Redis (`rediss://`): whom to trust and, for client-certificate auth, who we are. */
export const RedisTlsConfig = z
  .strictObject({
    ca: CaFile.optional().describe(
      "PEM file of the CA certificate(s) the server's certificate must chain to (a bundle may hold several); default: Node's public CAs.",
    ),
    cert: CertificateFile.optional().describe(
      'PEM file of the client certificate, for servers that require one (redis tls-auth-clients yes). Needs `key`.',
    ),
    key: PrivateKeyFile.optional().describe(
      'PEM file of the private key of `cert` (unencrypted). Never logged, nor its path.',
    ),
    servername: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Name the server's certificate must carry (and sent as SNI) instead of the host in the URL; on a Redis Cluster it applies to every node, which are often announced by IP address.",
      ),
  })
  .refine((tls) => (tls.cert === undefined) === (tls.key === undefined), {
    message: 'cert and key go together: set both or neither',
  });
export type RedisTlsConfig = z.infer<typeof RedisTlsConfig>;

/** The TLS options of a Redis URL: only rediss:// URLs use TLS. */
export function redisTlsProblem(url: string, tls: RedisTlsConfig | undefined): string | undefined {
  if (tls === undefined || /^rediss:\/\//i.test(url)) return undefined;
  return 'TLS settings need a rediss:// URL (redis:// connects without TLS)';
}
