import type { Logger } from '@walpurge/core';

/** Reads a topic's ID (TopicIdReader of @walpurge/kafka). */
export interface TopicIdSource {
  read(topic: string): Promise<string | undefined>;
  close(): Promise<void>;
}

/**
 * Which incarnation of a topic this process consumes: its ID when first seen, compared at every
 * check. A new ID means the topic was deleted and re-created under the same name, which offsets
 * alone do not show when the new log has grown past the consumer's position.
 */
export class TopicIncarnation {
  private id: string | undefined;
  private warned = false;

  constructor(
    private readonly topic: string,
    private readonly source: TopicIdSource,
    private readonly logger: Logger,
  ) {}

  /** True when the topic has another ID than when last seen; false when the same, first seen, or unknown now. */
  async replaced(): Promise<boolean> {
    let now: string | undefined;
    try {
      now = await this.source.read(this.topic);
      this.warned = false;
    } catch (error) {
      // Once per run of failures: without IDs, only a re-created topic shorter than the group's
      // position is found (as 'rewound').
      this.logger[this.warned ? 'debug' : 'warn'](
        { err: error, topic: this.topic },
        "could not read the topic's ID: a topic deleted and re-created under running invalidators is found only when its new log is shorter than their position",
      );
      this.warned = true;
      return false;
    }
    // A topic missing at the moment (deleted, not yet re-created): compared when it is back.
    if (now === undefined) return false;
    const before = this.id;
    this.id = now;
    return before !== undefined && before !== now;
  }

  async close(): Promise<void> {
    await this.source.close().catch(() => undefined);
  }
}
