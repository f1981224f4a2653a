/**
 * Ids 1..n drawn with probability proportional to 1 / rank^exponent: a few hot rows take most of the
 * traffic, as in a real cache, so reads and writes collide on the same keys often (the races the
 * soak is about) while the long tail keeps fills and misses going.
 */
export function zipfSampler(n: number, exponent: number, random: () => number = Math.random): () => number {
  const cumulative = new Float64Array(n);
  let total = 0;
  for (let rank = 1; rank <= n; rank++) {
    total += 1 / rank ** exponent;
    cumulative[rank - 1] = total;
  }
  return () => {
    const target = random() * total;
    let low = 0;
    let high = n - 1;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (cumulative[mid]! < target) low = mid + 1;
      else high = mid;
    }
    return low + 1;
  };
}
