import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTestCertificates, type TestCertificates } from './test-certificates.js';

/** The test PKI of makeTestCertificates, plus what a TLS-secured test broker reads. */
export interface KafkaCertificates extends TestCertificates {
  /** The server's key and certificate in one PEM file (Kafka's ssl.keystore.type=PEM). */
  brokerKeystore: string;
}

/**
 * A CA, a broker certificate for 127.0.0.1 and localhost, a client certificate and an unrelated CA
 * (EC P-256 keys in PKCS#8, which Kafka's PEM keystore reads unencrypted).
 */
export async function makeKafkaCertificates(): Promise<KafkaCertificates> {
  const certificates = await makeTestCertificates();
  const brokerKeystore = join(certificates.dir, 'broker-keystore.pem');
  const read = (file: string): string => readFileSync(file, 'utf8');
  writeFileSync(brokerKeystore, `${read(certificates.serverKeyFile)}${read(certificates.serverCertFile)}`);
  return { ...certificates, brokerKeystore };
}
