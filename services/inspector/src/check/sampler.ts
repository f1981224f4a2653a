/**
 * Picks the fraction of changes checked. Independent per change (no state), so a sample is as good
 * a picture of the stream as the rate allows and several observers sampling the same stream agree
 * on the rate, not on the changes. `random` is injectable for tests.
 */
export function createSampler(rate: number, random: () => number = Math.random): () => boolean {
  if (rate >= 1) return () => true;
  return () => random() < rate;
}
