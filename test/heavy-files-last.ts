import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Files that load the whole machine for minutes: the short soak runs its own PostgreSQL, three Kafka
 * brokers and seven walpurge processes (about 4 minutes). Beside it, other files' deadlines fail on a
 * 2-core machine (seen: a unit test's process spawns past 20 s), and its own verdicts are timed.
 * Started after every other file has started, it shares the machine only with the last ones to end.
 */
const HEAVY_FILES = ['test/soak/soak.int.test.ts'];

/** vitest's order (failed first, then longest by its cache, else largest), these files last. */
export class HeavyFilesLast extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const heavy = (file: TestSpecification): boolean =>
      HEAVY_FILES.some((path) => file.moduleId.endsWith(`/${path}`));
    return [...sorted.filter((file) => !heavy(file)), ...sorted.filter(heavy)];
  }
}
