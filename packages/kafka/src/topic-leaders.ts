import type { Admin } from 'kafkajs';

/** How long a role waits at start for topics just created (by it or a peer) to have leaders. */
export const TOPIC_LEADERS_TIMEOUT_MS = 30_000;
const POLL_MS = 200;

/** Kafka's answers while a new topic is still spreading through the cluster's metadata. */
const NOT_YET = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE']);

/**
 * Until every partition of `topics` has a leader, as the cluster's metadata says. A topic created a
 * moment ago reaches each broker's metadata on its own time: a broker asked too early answers
 * "does not host this topic-partition". kafkajs's own wait after createTopics fails on that answer
 * (it retries only "leader not available"), so walpurge creates without it and waits here instead.
 * Any other error, or the timeout, is thrown: a topic that never gets a leader is not one to write to.
 */
export async function waitForTopicLeaders(
  admin: Admin,
  topics: readonly string[],
  timeoutMs = TOPIC_LEADERS_TIMEOUT_MS,
): Promise<void> {
  if (topics.length === 0) return;
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics: [...topics] });
      const leaderless = found.filter(
        (topic) =>
          topic.partitions.length === 0 || topic.partitions.some((partition) => partition.leader < 0),
      );
      if (leaderless.length === 0 && found.length === topics.length) return;
      last = `partitions without a leader in ${leaderless.map((topic) => topic.name).join(', ') || 'a topic not listed'}`;
    } catch (error) {
      if (!notYet(error)) throw error;
      last = (error as Error).message;
    }
    if (Date.now() >= deadline)
      throw new Error(
        `Kafka topics ${topics.join(', ')} have no leader ${Math.round(timeoutMs / 1000)} s after they were created (${last}): is every broker up?`,
      );
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Kafka's "not yet" answer, also when kafkajs's own retries gave up on it and wrapped it. */
function notYet(error: unknown): boolean {
  for (let at: unknown = error, depth = 0; at && typeof at === 'object' && depth < 4; depth++) {
    const { type, originalError, cause } = at as { type?: unknown; originalError?: unknown; cause?: unknown };
    if (typeof type === 'string' && NOT_YET.has(type)) return true;
    at = originalError ?? cause;
  }
  return false;
}
