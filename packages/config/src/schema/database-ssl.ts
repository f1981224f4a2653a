import { z } from 'zod';
import { CaFile, CertificateFile, PrivateKeyFile } from './tls.js';

/**
 * The sslmode values walpurge supports, with node-postgres' meanings; `prefer` and `allow` would
 * fall back to plain text.
 */
export const SSL_MODES = ['disable', 'no-verify', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export const DatabaseSslConfig = z
  .strictObject({
    mode: z
      .enum(SSL_MODES)
      .optional()
      .describe(
        "As node-postgres reads sslmode: disable (no TLS); require and verify-full (the certificate must chain to `ca`, or to Node's public CAs without one, and name the host); verify-ca (it must chain to `ca`; any name); no-verify (encrypted, nothing checked: validate and the start warn). Default: the URL's sslmode; without one, verify-full when a CA, certificate or key is given (here or in the URL), else disable. When both this and the URL's sslmode are set they must agree.",
      ),
    ca: CaFile.optional().describe(
      "PEM file (relative to the config file's directory) of the CA certificate(s) the server's certificate must chain to: your own CA, or the provider's bundle (several certificates in one file). As the URL's sslrootcert. Default: Node's public CAs.",
    ),
    cert: CertificateFile.optional().describe(
      "PEM file of the client certificate, for pg_hba `cert` or `clientcert=verify-full`. As the URL's sslcert. Needs `key`.",
    ),
    key: PrivateKeyFile.optional().describe(
      "PEM file of the private key of `cert` (unencrypted: there is no passphrase). As the URL's sslkey. Never logged, nor its path.",
    ),
  })
  .refine((ssl) => ssl.mode !== 'disable' || (!ssl.ca && !ssl.cert && !ssl.key), {
    message: 'mode disable uses no certificates: remove ca, cert and key, or choose another mode',
  });
export type DatabaseSslConfig = z.infer<typeof DatabaseSslConfig>;
