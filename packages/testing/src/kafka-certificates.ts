import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, type TempDir } from './temp-dirs.js';

/** PEM files for a TLS-secured test broker and its clients, all in one temp dir. */
export interface KafkaCertificates {
  dir: TempDir;
  /** CA that signed the broker's and the client's certificates. */
  ca: string;
  /** The broker's key and certificate chain in one PEM file (Kafka's ssl.keystore.type=PEM). */
  brokerKeystore: string;
  /** A client certificate and its key, signed by `ca` (mTLS). */
  clientCert: string;
  clientKey: string;
  /** A second, unrelated CA: trusting it instead of `ca` must fail verification. */
  otherCa: string;
}

function openssl(cwd: string, args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function selfSignedCa(cwd: string, name: string): void {
  openssl(cwd, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
  openssl(cwd, [
    ...['req', '-x509', '-new', '-key', `${name}.key`, '-days', '2', '-subj', `/CN=walpurge test ${name}`],
    ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'],
    ...['-out', `${name}.pem`],
  ]);
}

/** A key and a certificate for `name`, signed by the CA `ca`, with `extensions` (an openssl ext file). */
function signed(cwd: string, name: string, subject: string, extensions: string): void {
  openssl(cwd, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
  openssl(cwd, ['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`]);
  writeFileSync(join(cwd, `${name}.ext`), extensions);
  openssl(cwd, [
    ...['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial'],
    ...['-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`],
  ]);
}

/**
 * A CA, a broker certificate for 127.0.0.1 and localhost, a client certificate, and an unrelated CA,
 * made with openssl (EC P-256 keys in PKCS#8, which Kafka's PEM keystore reads unencrypted).
 */
export function makeKafkaCertificates(): KafkaCertificates {
  const dir = makeTempDir('kafka-certs');
  const cwd = dir.path;
  selfSignedCa(cwd, 'ca');
  selfSignedCa(cwd, 'other-ca');
  signed(
    cwd,
    'broker',
    '/CN=localhost',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  signed(cwd, 'client', '/CN=walpurge', 'extendedKeyUsage=clientAuth\n');
  const read = (name: string): string => readFileSync(join(cwd, name), 'utf8');
  writeFileSync(join(cwd, 'broker-keystore.pem'), `${read('broker.key')}${read('broker.pem')}`);
  return {
    dir,
    ca: join(cwd, 'ca.pem'),
    brokerKeystore: join(cwd, 'broker-keystore.pem'),
    clientCert: join(cwd, 'client.pem'),
    clientKey: join(cwd, 'client.key'),
    otherCa: join(cwd, 'other-ca.pem'),
  };
}
