import type { BaseOptions, SASLOptions } from '@platformatic/kafka';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { KafkaConfig } from '@walpurge/config';
import { ErrorCode, WalpurgeError } from '@walpurge/core';
import type { tlsOptions } from './kafka-security.js';

/**
 * How a @platformatic/kafka client reaches the brokers of `config`, as kafkajs would: the same
 * brokers, client id, TLS (with SNI, see sendServerName) and SASL. `tls` is kafka.ssl as
 * tlsOptions read it (PEM files read once per start). SASL oauthbearer has no mapping: refused.
 */
export function platformaticConnection(
  config: KafkaConfig,
  tls: ReturnType<typeof tlsOptions>,
): Pick<BaseOptions, 'clientId' | 'bootstrapBrokers' | 'tls' | 'tlsServerName' | 'sasl'> {
  const secure = tlsOf(tls);
  const sasl = saslOf(config.sasl);
  return {
    clientId: config.clientId,
    bootstrapBrokers: config.brokers,
    ...(secure ? { tls: secure } : {}),
    ...(sendServerName(secure, config.brokers) ? { tlsServerName: true } : {}),
    ...(sasl ? { sasl } : {}),
  };
}

function saslOf(sasl: KafkaConfig['sasl']): SASLOptions | undefined {
  if (!sasl) return undefined;
  if (sasl.mechanism === 'oauthbearer')
    // The producer refuses it in validate and at start (producerClientProblems).
    throw new WalpurgeError(
      ErrorCode.ConfigInvalid,
      '@platformatic/kafka does not support SASL oauthbearer',
      {
        hint: "use producerClient 'kafkajs'",
      },
    );
  const mechanism = (
    { plain: 'PLAIN', 'scram-sha-256': 'SCRAM-SHA-256', 'scram-sha-512': 'SCRAM-SHA-512' } as const
  )[sasl.mechanism];
  return { mechanism, username: sasl.username, password: sasl.password };
}

/** kafka.ssl as node:tls options: false is plaintext, true TLS against the system CAs. */
function tlsOf(tls: ReturnType<typeof tlsOptions>): ConnectionOptions | undefined {
  if (tls === false) return undefined;
  return tls === true ? {} : tls;
}

/**
 * Send each broker's host name as TLS SNI, as kafkajs does (brokers behind SNI routing, as in many
 * managed services, refuse a handshake without it), unless kafka.ssl.servername names one (this
 * client would put the host over it) or the brokers are addresses (SNI carries names only).
 */
function sendServerName(tls: ConnectionOptions | undefined, brokers: readonly string[]): boolean {
  if (!tls || tls.servername !== undefined) return false;
  return brokers.some((broker) => isIP(broker.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')) === 0);
}
