import type { Admin } from '@platformatic/kafka';
import type { KafkaConfig } from '@walpurge/config';
import { tlsOptions } from './kafka-security.js';
import { platformaticConnection } from './platformatic-connection.js';
import { nodeRunsPlatformatic } from './platformatic-node.js';

/** What brokers without topic IDs (before Kafka 2.8) answer. */
const NO_ID = /^0{8}-0{4}-0{4}-0{4}-0{12}$/;

/**
 * Reads topic IDs. Kafka (2.8 and later) gives every topic an ID at creation, so a topic deleted
 * and re-created under the same name has a new one, even when its offsets look continuous to a
 * consumer. kafkajs speaks Metadata v6, which carries no IDs: this asks with @platformatic/kafka's
 * admin client, connected as kafkajs is (platformaticConnection), on first use. It is loaded only
 * then, and only on a Node.js that runs it: every role imports this package, and walpurge itself
 * runs on older Node.js versions than that client does.
 */
export class TopicIdReader {
  private admin: Admin | undefined;
  private closed = false;

  constructor(private readonly config: KafkaConfig) {}

  /**
   * The topic's ID now; undefined when the topic does not exist at the moment. Throws when the
   * brokers cannot be asked (unreachable, refused, unsupported) or give no IDs.
   */
  async read(topic: string): Promise<string | undefined> {
    if (this.closed) throw new Error('the topic ID reader is closed');
    this.admin ??= await this.connect();
    try {
      const metadata = await this.admin.metadata({
        topics: [topic],
        forceUpdate: true,
        autocreateTopics: false,
      });
      const found = metadata.topics.get(topic);
      if (!found) return undefined;
      // Brokers before 2.8 (or a metadata version without IDs) answer with none: not a missing topic.
      if (!found.id || NO_ID.test(found.id))
        throw new Error(`the brokers give no topic IDs for ${topic} (Kafka before 2.8)`);
      return found.id;
    } catch (error) {
      if (error instanceof Error && /unknown topic/i.test(error.message)) return undefined;
      throw error;
    }
  }

  private async connect(): Promise<Admin> {
    if (!nodeRunsPlatformatic(process.versions.node))
      throw new Error(
        `topic IDs are read with @platformatic/kafka, which needs Node.js 20.19.4 or later (22.18 on 22); this is ${process.version}`,
      );
    const { Admin } = await import('@platformatic/kafka');
    return new Admin({
      ...platformaticConnection(this.config, tlsOptions(this.config.ssl)),
      // One short try: the caller asks again at its next check.
      retries: 1,
      retryDelay: 200,
      connectTimeout: 5_000,
      timeout: 10_000,
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const admin = this.admin;
    this.admin = undefined;
    await admin?.close();
  }
}
