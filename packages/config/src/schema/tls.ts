import { z } from 'zod';

// Only paths here: the files are checked apart from parsing (tls-files.ts), by `validate` and at
// start, so `explain` or `validate --offline` work where the certificates are not mounted.
/** PEM file of one or more CA certificates (a provider's bundle may hold many). */
export const CaFile = z.string().min(1);
/** PEM file of a client certificate (its chain may follow it). */
export const CertificateFile = z.string().min(1);
/** PEM file of an unencrypted private key. */
export const PrivateKeyFile = z.string().min(1);

/** TLS towards a Redis (`rediss://`): whom to trust and, for client-certificate auth, who we are. */
export const RedisTlsConfig = z
  .strictObject({
    ca: CaFile.optional().describe(
      "PEM file (relative to the config file's directory) of the CA certificate(s) the server's certificate must chain to (a bundle may hold several); default: Node's public CAs.",
    ),
    cert: CertificateFile.optional().describe(
      'PEM file of the client certificate, for servers that require one (redis tls-auth-clients yes). Needs `key`.',
    ),
    key: PrivateKeyFile.optional().describe(
      'PEM file of the private key of `cert` (unencrypted: there is no passphrase). Never logged, nor its path.',
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
