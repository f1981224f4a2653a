/**
 * What kafka.producerClient: platformatic cannot honour, refused by name instead of half-supported.
 * Works on raw (unvalidated) input, as crossSectionProblems does, and on a parsed KafkaConfig (the
 * listener's sink checks again at start, for configs built in code).
 */
export function producerClientProblems(kafka: unknown): Array<{ path: PropertyKey[]; message: string }> {
  if (!kafka || typeof kafka !== 'object') return [];
  const section = kafka as Record<string, unknown>;
  if (section['producerClient'] !== 'platformatic') return [];
  const problems: Array<{ path: PropertyKey[]; message: string }> = [];
  const sasl = section['sasl'];
  if (sasl && typeof sasl === 'object' && (sasl as Record<string, unknown>)['mechanism'] === 'oauthbearer')
    // Its OAUTHBEARER takes a bare token with no refresh contract like kafkajs's provider: a
    // long-running listener would authenticate with an expired token after the first refresh.
    problems.push({
      path: ['kafka', 'producerClient'],
      message:
        "producerClient 'platformatic' does not support SASL oauthbearer (kafka.sasl.tokenProvider): use producerClient 'kafkajs', or a plain/scram mechanism",
    });
  if (section['producerThread'] === true)
    // The thread runs a kafkajs producer; a second client there is not worth its cost (the
    // platformatic client's lower CPU per record is the reason to choose it at all).
    problems.push({
      path: ['kafka', 'producerClient'],
      message:
        "producerClient 'platformatic' runs on the main thread only: remove kafka.producerThread, or use producerClient 'kafkajs'",
    });
  return problems;
}
