import { describe, expect, it } from 'vitest';
import { PipelinedCommits } from './pipelined-commits.js';

/** The part of kafkajs's eachBatch payload a commit uses; each commit waits for `settle`. */
function partition(partitionNumber: number) {
  const sent: string[] = [];
  const waiting: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  const payload = {
    batch: { topic: 'changes', partition: partitionNumber },
    commitOffsetsIfNecessary: async (offsets?: {
      topics: Array<{ partitions: Array<{ offset: string }> }>;
    }) => {
      sent.push(offsets?.topics[0]?.partitions[0]?.offset ?? 'none');
      await new Promise<void>((resolve, reject) => waiting.push({ resolve, reject }));
    },
  } as unknown as Parameters<PipelinedCommits['commit']>[0];
  const settle = async (error?: Error): Promise<void> => {
    await new Promise((r) => setImmediate(r));
    const next = waiting.shift();
    if (!next) throw new Error('no commit in flight');
    if (error) next.reject(error);
    else next.resolve();
    await new Promise((r) => setImmediate(r));
  };
  return { payload, sent, settle, inFlight: () => waiting.length };
}

describe('PipelinedCommits', () => {
  it('keeps one commit in flight per partition and sends only the newest offset behind it', async () => {
    const commits = new PipelinedCommits();
    const p0 = partition(0);
    const p1 = partition(1);
    commits.commit(p0.payload, '10');
    commits.commit(p1.payload, '5');
    commits.commit(p0.payload, '20');
    commits.commit(p0.payload, '30');
    await new Promise((r) => setImmediate(r));
    expect(p0.sent).toEqual(['10']);
    expect(p1.sent).toEqual(['5']);
    await p0.settle();
    expect(p0.sent).toEqual(['10', '30']);
    const drained = commits.drain();
    await p0.settle();
    await p1.settle();
    expect(await drained).toBeUndefined();
    expect(p0.inFlight() + p1.inFlight()).toBe(0);
  });

  it('throws a failed commit once at the next chunk, and the drain sends that offset again', async () => {
    const commits = new PipelinedCommits();
    const p0 = partition(0);
    commits.commit(p0.payload, '10');
    const notCoordinator = new Error('This is not the correct coordinator for this group');
    await p0.settle(notCoordinator);
    expect(() => commits.throwIfFailed()).toThrow(notCoordinator);
    expect(() => commits.throwIfFailed()).not.toThrow();
    const drained = commits.drain();
    await p0.settle();
    expect(await drained).toBeUndefined();
    expect(p0.sent).toEqual(['10', '10']);
  });

  it('a newer offset replaces a failed one and its success clears the failure; the drain reports one it could not cure', async () => {
    const commits = new PipelinedCommits();
    const p0 = partition(0);
    commits.commit(p0.payload, '10');
    await p0.settle(new Error('request timed out'));
    commits.commit(p0.payload, '20');
    await p0.settle();
    const failed = new Error('still failing');
    const drained = commits.drain();
    // Nothing pending after '20' was committed: the drain sends nothing.
    expect(p0.inFlight()).toBe(0);
    await expect(drained).resolves.toBeUndefined();
    expect(p0.sent).toEqual(['10', '20']);
    commits.commit(p0.payload, '30');
    await p0.settle(failed);
    const drainedAgain = commits.drain();
    await p0.settle(failed);
    expect(await drainedAgain).toBe(failed);
  });

  it('after a rejoin drops what the earlier generation still had to commit, and its failures', async () => {
    const commits = new PipelinedCommits();
    const p0 = partition(0);
    commits.commit(p0.payload, '10');
    commits.commit(p0.payload, '20');
    commits.rejoined();
    await p0.settle(new Error('the group is rebalancing'));
    expect(() => commits.throwIfFailed()).not.toThrow();
    expect(await commits.drain()).toBeUndefined();
    expect(p0.sent).toEqual(['10']);
  });
});
