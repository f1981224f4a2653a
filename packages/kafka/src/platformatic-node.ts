/**
 * Whether this Node.js runs @platformatic/kafka 1.35 (its engines: >= 20.19.4 on 20, >= 22.18.0 on
 * 22, >= 24.6.0 on 24 and later). walpurge itself runs from 20.10: only the opt-in client needs more.
 */
export function nodeRunsPlatformatic(version: string): boolean {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map((part) => Number.parseInt(part, 10));
  const atLeast = (m: number, p: number): boolean => minor > m || (minor === m && patch >= p);
  if (major === 20) return atLeast(19, 4);
  if (major === 22) return atLeast(18, 0);
  if (major === 23) return false;
  if (major >= 24) return major > 24 || atLeast(6, 0);
  return false;
}
