import { describe, expect, it } from 'vitest';
import { nodeRunsPlatformatic } from './platformatic-node.js';

describe('nodeRunsPlatformatic', () => {
  it("follows @platformatic/kafka 1.35's engines", () => {
    for (const version of ['20.19.4', '20.20.2', '22.18.0', '22.20.1', '24.6.0', '25.0.0'])
      expect(nodeRunsPlatformatic(version), version).toBe(true);
    for (const version of ['20.10.0', '20.19.3', '21.7.3', '22.17.9', '23.11.0', '24.5.0', '18.20.0'])
      expect(nodeRunsPlatformatic(version), version).toBe(false);
  });
});
