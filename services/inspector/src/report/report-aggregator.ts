import type { Writer } from '../check/verdict.js';
import { nines, type Inconsistency, type InspectReport } from './inspect-report.js';

type Verdict = 'consistent' | 'inconsistent' | 'unverifiable';
const WRITERS: readonly Writer[] = ['sdk', 'other'];
/** Samples kept per writer for the time-to-consistency percentiles (reservoir: memory stays bounded). */
const RESERVOIR = 20_000;
/** Samples kept of the observer's arrival lag: it only needs to show p50/p99, not a tail. */
const ARRIVAL_RESERVOIR = 5_000;

class Reservoir {
  private readonly values: number[] = [];
  private seen = 0;
  constructor(private readonly size = RESERVOIR) {}
  add(value: number): void {
    this.seen += 1;
    if (this.values.length < this.size) this.values.push(value);
    else {
      const slot = Math.floor(Math.random() * this.seen);
      if (slot < this.size) this.values[slot] = value;
    }
  }
  percentiles(): { count: number; p50: number; p99: number; p999: number } {
    const sorted = [...this.values].sort((a, b) => a - b);
    const at = (q: number): number =>
      sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
    return { count: this.seen, p50: at(0.5), p99: at(0.99), p999: at(0.999) };
  }
}

/** Counts since the observer started, for GET /inspect and `walpurge inspect`. */
export class ReportAggregator {
  private readonly since = new Date();
  private changesSeen = 0;
  private changesSampled = 0;
  private droppedCount = 0;
  private readonly counts = new Map<string, Record<Verdict | 'absent', number>>();
  private readonly unchecked: Record<string, number> = {};
  private readonly recent: Inconsistency[] = [];
  private readonly ttc = { sdk: new Reservoir(), other: new Reservoir() };
  private readonly neverConsistentCount = { sdk: 0, other: 0 };
  private readonly skippedLateCount = { sdk: 0, other: 0 };
  private readonly arrival = new Reservoir(ARRIVAL_RESERVOIR);

  constructor(
    private readonly timescales: readonly string[],
    private readonly maxInconsistencies: number,
  ) {}

  seen(): void {
    this.changesSeen += 1;
  }
  sampled(): void {
    this.changesSampled += 1;
  }
  dropped(): void {
    this.droppedCount += 1;
  }
  notChecked(reason: string): void {
    this.unchecked[reason] = (this.unchecked[reason] ?? 0) + 1;
  }
  /** `absent`: a consistent check that found no entry at all (purged, or never cached). */
  check(timescale: string, writer: Writer, verdict: Verdict, absent = false): void {
    const id = `${timescale}\u0000${writer}`;
    const row = this.counts.get(id) ?? { consistent: 0, absent: 0, inconsistent: 0, unverifiable: 0 };
    row[verdict] += 1;
    if (absent) row.absent += 1;
    this.counts.set(id, row);
  }
  timeToConsistency(writer: Writer, ms: number): void {
    this.ttc[writer].add(ms);
  }
  neverConsistent(writer: Writer): void {
    this.neverConsistentCount[writer] += 1;
  }
  /** A key found consistent whose change the observer saw too late to time it. */
  timeToConsistencySkipped(writer: Writer): void {
    this.skippedLateCount[writer] += 1;
  }
  /** Commit to the observer receiving a sampled change (ms). */
  arrivalLag(ms: number): void {
    this.arrival.add(ms);
  }
  inconsistency(record: Inconsistency): void {
    this.recent.push(record);
    if (this.recent.length > this.maxInconsistencies) this.recent.shift();
  }

  report(): InspectReport {
    const labels = [...this.timescales];
    for (const id of this.counts.keys()) {
      const timescale = id.split('\u0000')[0] ?? '';
      if (!labels.includes(timescale)) labels.push(timescale);
    }
    return {
      since: this.since.toISOString(),
      until: new Date().toISOString(),
      changesSeen: this.changesSeen,
      changesSampled: this.changesSampled,
      dropped: this.droppedCount,
      checks: labels.flatMap((timescale) =>
        WRITERS.map((writer) => {
          const row = this.counts.get(`${timescale}\u0000${writer}`) ?? {
            consistent: 0,
            absent: 0,
            inconsistent: 0,
            unverifiable: 0,
          };
          // Unverifiable checks prove nothing either way: the nines count only decided checks.
          const checked = row.consistent + row.inconsistent + row.unverifiable;
          return {
            timescale,
            writer,
            checked,
            ...row,
            ...nines(row.consistent + row.inconsistent, row.inconsistent),
          };
        }),
      ),
      timeToConsistencyMs: {
        sdk: this.timeToConsistencyOf('sdk'),
        other: this.timeToConsistencyOf('other'),
      },
      arrivalLagMs: this.arrivalLagMs(),
      unchecked: { ...this.unchecked },
      inconsistencies: [...this.recent],
    };
  }

  private timeToConsistencyOf(writer: Writer): InspectReport['timeToConsistencyMs'][Writer] {
    return {
      ...this.ttc[writer].percentiles(),
      neverConsistent: this.neverConsistentCount[writer],
      skippedLate: this.skippedLateCount[writer],
    };
  }

  private arrivalLagMs(): InspectReport['arrivalLagMs'] {
    const { count, p50, p99 } = this.arrival.percentiles();
    return { count, p50, p99 };
  }
}
