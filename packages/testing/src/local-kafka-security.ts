import type { KafkaCertificates } from './kafka-certificates.js';
import { freePort } from './ports.js';

export interface KafkaSecurityOptions {
  /** From makeKafkaCertificates(): the SSL and mTLS listeners' keystore and truststore. */
  certificates: KafkaCertificates;
  /** Users of the SASL listener: PLAIN (JAAS) and SCRAM-SHA-256/512 (written at storage format). */
  users: Array<{ username: string; password: string }>;
}

/** host:port of the secured listeners of a local broker. */
export interface SecuredListeners {
  /** TLS, server certificate only. */
  ssl: string;
  /** TLS with ssl.client.auth=required. */
  mtls: string;
  /** SASL_PLAINTEXT with PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER (unsecured JWS tokens). */
  sasl: string;
  /** SASL_PLAINTEXT enabling PLAIN alone, for "mechanism not offered". */
  saslPlainOnly: string;
}

export async function securedListeners(): Promise<SecuredListeners> {
  return {
    ssl: `127.0.0.1:${await freePort()}`,
    mtls: `127.0.0.1:${await freePort()}`,
    sasl: `127.0.0.1:${await freePort()}`,
    saslPlainOnly: `127.0.0.1:${await freePort()}`,
  };
}

const jaasQuote = (value: string): string => `"${value.replace(/["\\]/g, '\\$&')}"`;

/**
 * server.properties entries adding the secured listeners. The PEM keystore and truststore
 * (KIP-651) need no keytool; OAUTHBEARER uses Kafka's default unsecured validator, which accepts
 * unsigned JWTs carrying `sub`, `iat` and `exp`: a test stand-in for a real identity provider.
 */
export function securitySettings(
  security: KafkaSecurityOptions,
  port: number,
  controllerPort: number,
  secured: SecuredListeners,
): Record<string, string> {
  const { certificates } = security;
  const listeners = `PLAINTEXT://127.0.0.1:${port},SSL://${secured.ssl},MTLS://${secured.mtls},SASL://${secured.sasl},SASLPLAIN://${secured.saslPlainOnly}`;
  const plainUsers = security.users
    .map((user) => `user_${user.username}=${jaasQuote(user.password)}`)
    .join(' ');
  const tls = (listener: string): Record<string, string> => ({
    [`listener.name.${listener}.ssl.keystore.type`]: 'PEM',
    [`listener.name.${listener}.ssl.keystore.location`]: certificates.brokerKeystore,
    [`listener.name.${listener}.ssl.truststore.type`]: 'PEM',
    [`listener.name.${listener}.ssl.truststore.location`]: certificates.caFile,
  });
  return {
    listeners: `${listeners},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': listeners,
    'listener.security.protocol.map':
      'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL,SASL:SASL_PLAINTEXT,SASLPLAIN:SASL_PLAINTEXT',
    ...tls('ssl'),
    ...tls('mtls'),
    'listener.name.mtls.ssl.client.auth': 'required',
    'sasl.enabled.mechanisms': 'PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER',
    'listener.name.sasl.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required ${plainUsers};`,
    'listener.name.saslplain.sasl.enabled.mechanisms': 'PLAIN',
    'listener.name.saslplain.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required ${plainUsers};`,
    'listener.name.sasl.scram-sha-256.sasl.jaas.config':
      'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'listener.name.sasl.scram-sha-512.sasl.jaas.config':
      'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'listener.name.sasl.oauthbearer.sasl.jaas.config':
      'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";',
  };
}

/** `kafka-storage format` arguments writing the SCRAM credentials (KRaft keeps them in metadata). */
export function scramFormatArgs(security: KafkaSecurityOptions): string[] {
  return security.users.flatMap((user) =>
    ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((mechanism) => [
      '--add-scram',
      `${mechanism}=[name=${user.username},password=${user.password}]`,
    ]),
  );
}
