import { describe, expect, it } from 'vitest';
import { WalpurgeError } from '@walpurge/core';
import { assessDurability, matchingMinInsyncReplicas, resolveReplication } from './replication.js';

describe('matchingMinInsyncReplicas', () => {
  it('keeps two copies behind acks=all from RF 2 up, and lets one broker of three or more be down', () => {
    expect([1, 2, 3, 4, 5].map(matchingMinInsyncReplicas)).toEqual([1, 2, 2, 3, 4]);
  });
});

describe('resolveReplication', () => {
  it('defaults the replication factor to min(3, brokers), min.insync.replicas to match', () => {
    expect(resolveReplication({}, 1)).toEqual({ replicationFactor: 1, minInsyncReplicas: 1 });
    expect(resolveReplication({}, 2)).toEqual({ replicationFactor: 2, minInsyncReplicas: 2 });
    expect(resolveReplication({}, 3)).toEqual({ replicationFactor: 3, minInsyncReplicas: 2 });
    expect(resolveReplication({}, 9)).toEqual({ replicationFactor: 3, minInsyncReplicas: 2 });
  });

  it('takes explicit settings as they are', () => {
    expect(resolveReplication({ replicationFactor: 4, minInsyncReplicas: 1 }, 5)).toEqual({
      replicationFactor: 4,
      minInsyncReplicas: 1,
    });
  });

  it('refuses an explicit replication factor above the broker count, naming both', () => {
    expect(() => resolveReplication({ replicationFactor: 5, brokers: ['k1:9092', 'k2:9092'] }, 3)).toThrow(
      'kafka.replicationFactor is 5 but the Kafka cluster at k1:9092, k2:9092 has 3 live brokers: walpurge cannot create its topics',
    );
    expect(() => resolveReplication({ replicationFactor: 5 }, 3)).toThrow(WalpurgeError);
  });

  it('refuses a min.insync.replicas above the replication factor the cluster allows', () => {
    expect(() => resolveReplication({ minInsyncReplicas: 2 }, 1)).toThrow(
      'kafka.minInsyncReplicas is 2, above the replication factor 1 (min(3, 1 brokers)): Kafka would refuse every write',
    );
  });
});

describe('assessDurability', () => {
  const topic = { topic: 't', replicationFactor: 3, minInsyncReplicas: 2, brokers: 3 };

  it('is content with replicas and a min.insync.replicas above 1', () => {
    expect(assessDurability(topic, 'b:9092')).toEqual({ safe: true });
  });

  it('never warns about one replica on a single-broker cluster, but says so', () => {
    const verdict = assessDurability(
      { ...topic, replicationFactor: 1, minInsyncReplicas: 1, brokers: 1 },
      'b',
    );
    expect(verdict.safe).toBe(true);
    expect(verdict).toHaveProperty('note', expect.stringContaining('single-broker'));
  });

  it('warns about one replica on a cluster that could hold more', () => {
    const verdict = assessDurability({ ...topic, replicationFactor: 1, minInsyncReplicas: 1 }, 'b:9092');
    expect(verdict).toMatchObject({
      safe: false,
      reason: expect.stringContaining('one replica on a cluster of 3 brokers'),
    });
    expect(verdict).toHaveProperty(
      'fix',
      expect.stringContaining('kafka-reassign-partitions.sh --bootstrap-server b:9092'),
    );
  });

  it('warns about min.insync.replicas 1 with several replicas, with the kafka-configs.sh command', () => {
    expect(assessDurability({ ...topic, minInsyncReplicas: 1 }, 'b:9092')).toEqual({
      safe: false,
      kind: 'meaningless',
      reason:
        'min.insync.replicas is 1 with 3 replicas: once the in-sync replicas shrink to the leader, acks=all waits for the leader alone',
      fix: 'kafka-configs.sh --bootstrap-server b:9092 --alter --entity-type topics --entity-name t --add-config min.insync.replicas=2',
    });
  });

  it('flags a min.insync.replicas above the replication factor (a broker default too): every acks=all write is refused', () => {
    expect(assessDurability({ ...topic, replicationFactor: 2, minInsyncReplicas: 3 }, 'b:9092')).toEqual({
      safe: false,
      kind: 'refused',
      reason:
        'min.insync.replicas is 3, above its 2 replicas: Kafka refuses every acks=all write (NOT_ENOUGH_REPLICAS) and the listener retries forever, holding its replication slot',
      fix: 'kafka-configs.sh --bootstrap-server b:9092 --alter --entity-type topics --entity-name t --add-config min.insync.replicas=2',
    });
    // Even on a single broker, where one replica is otherwise the best there is.
    expect(
      assessDurability({ ...topic, replicationFactor: 1, minInsyncReplicas: 2, brokers: 1 }, 'b'),
    ).toMatchObject({ safe: false, kind: 'refused' });
  });

  it('warns, without calling it unsafe, about fewer replicas than min(3, brokers)', () => {
    const verdict = assessDurability({ ...topic, replicationFactor: 2, minInsyncReplicas: 2 }, 'b:9092');
    expect(verdict).toMatchObject({
      safe: true,
      fewerReplicas: {
        reason: expect.stringContaining('2 replicas on a cluster of 3 brokers (walpurge creates 3'),
        fix: expect.stringContaining('raise its replication factor to 3 with kafka-reassign-partitions.sh'),
      },
    });
    expect(
      assessDurability({ ...topic, replicationFactor: 2, minInsyncReplicas: 2, brokers: 2 }, 'b'),
    ).toEqual({ safe: true });
  });
});
