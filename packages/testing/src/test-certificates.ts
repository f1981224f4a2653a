import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findExecutable } from './executables.js';
import { runToCompletion } from './processes.js';
import { makeTempDir } from './temp-dirs.js';

export interface TestCertificatesOptions {
  /** subjectAltName entries of the server certificate. Default: IP 127.0.0.1 and DNS localhost. */
  serverNames?: string[];
  /** Common name of the client certificate: PostgreSQL's `cert` auth maps it to the role. */
  clientName?: string;
}

/** PEM files of a throw-away PKI, in a temp dir removed by `remove()` (or at exit). */
export interface TestCertificates {
  dir: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** A second, unrelated CA: trusting it instead of `caFile` must fail verification. */
  otherCaFile: string;
  remove(): Promise<void>;
}

// P-256 keys: generated in milliseconds, unlike RSA.
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/**
 * A CA, a server certificate signed by it (for 127.0.0.1/localhost unless told otherwise), a client
 * certificate and an unrelated second CA, made with the `openssl` command line.
 */
export async function makeTestCertificates(opts: TestCertificatesOptions = {}): Promise<TestCertificates> {
  const openssl = findExecutable('openssl', ['/usr/bin', '/usr/local/bin']);
  if (!openssl) throw new Error('openssl not found on PATH; install it (apt-get install openssl)');
  const temp = makeTempDir('certs');
  const dir = temp.path;
  const run = (name: string, args: string[]): Promise<void> =>
    runToCompletion(`openssl ${name}`, openssl, args, {
      cwd: dir,
      logFile: join(dir, `${name}.log`),
      timeoutMs: 30_000,
    });
  const file = (name: string): string => join(dir, name);
  try {
    for (const ca of ['ca', 'other-ca'])
      await run(ca, [
        ...['req', '-x509', ...EC_KEY, '-keyout', file(`${ca}.key`), '-out', file(`${ca}.pem`)],
        ...['-days', '2', '-subj', `/CN=walpurge test ${ca}`],
        ...[
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'keyUsage=critical,keyCertSign,cRLSign',
        ],
      ]);
    const serverNames = opts.serverNames ?? ['IP:127.0.0.1', 'DNS:localhost'];
    const leaves = [
      { name: 'server', subject: '/CN=walpurge test server', usage: 'serverAuth', names: serverNames },
      { name: 'client', subject: `/CN=${opts.clientName ?? 'walpurge'}`, usage: 'clientAuth', names: [] },
    ];
    for (const leaf of leaves) {
      const extensions = [
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        `extendedKeyUsage=${leaf.usage}`,
        ...(leaf.names.length > 0 ? [`subjectAltName=${leaf.names.join(',')}`] : []),
      ];
      writeFileSync(file(`${leaf.name}.ext`), `${extensions.join('\n')}\n`);
      await run(`${leaf.name}-request`, [
        ...['req', '-new', ...EC_KEY, '-keyout', file(`${leaf.name}.key`)],
        ...['-out', file(`${leaf.name}.csr`), '-subj', leaf.subject],
      ]);
      await run(`${leaf.name}-sign`, [
        ...['x509', '-req', '-in', file(`${leaf.name}.csr`), '-CA', file('ca.pem'), '-CAkey', file('ca.key')],
        ...[
          '-CAcreateserial',
          '-days',
          '2',
          '-extfile',
          file(`${leaf.name}.ext`),
          '-out',
          file(`${leaf.name}.pem`),
        ],
      ]);
    }
  } catch (err) {
    await temp.remove();
    throw err;
  }
  return {
    dir,
    caFile: file('ca.pem'),
    serverCertFile: file('server.pem'),
    serverKeyFile: file('server.key'),
    clientCertFile: file('client.pem'),
    clientKeyFile: file('client.key'),
    otherCaFile: file('other-ca.pem'),
    remove: () => temp.remove(),
  };
}
