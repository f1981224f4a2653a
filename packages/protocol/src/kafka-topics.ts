/**
 * Kafka's message size limit, shared by the listener, the invalidator and the CLI (walpurge creates
 * and reads its topics in @walpurge/kafka).
 */

/** Kafka's default limit on one record batch (broker message.max.bytes, topic max.message.bytes). */
export const KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
