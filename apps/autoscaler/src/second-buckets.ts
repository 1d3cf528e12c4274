/**
 * Totals per whole second (what the pool's runners reported in that second, summed), and
 * their average over a trailing window, as Knative's linear window average does: over the
 * seconds from the first one recorded (if that is inside the window) to the last one recorded;
 * a second without a record between those counts as 0; seconds after the last record are left
 * out (the data is late, not zero); nothing recorded inside the window means no average.
 */
export class SecondBuckets {
  private readonly totals = new Map<number, number>();
  private firstSecond: number | undefined;
  private lastSecond: number | undefined;
  private readonly retainSeconds: number;

  /** @param retainSeconds how far back averages may reach (the longest window). */
  constructor(retainSeconds: number) {
    this.retainSeconds = retainSeconds;
  }

  /** Adds value to the total of the second that `nowMs` falls in. */
  record(nowMs: number, value: number): void {
    const second = Math.floor(nowMs / 1000);
    // A gap longer than the retained span starts the data afresh (a partial window again).
    if (this.lastSecond === undefined || second - this.lastSecond > this.retainSeconds) {
      this.totals.clear();
      this.firstSecond = second;
    }
    this.totals.set(second, (this.totals.get(second) ?? 0) + value);
    if (this.lastSecond === undefined || second > this.lastSecond) this.lastSecond = second;
    for (const key of this.totals.keys()) if (key <= this.lastSecond - this.retainSeconds) this.totals.delete(key);
  }

  /** The average over the trailing window of `windowSeconds` ending at `nowMs`; undefined when the window holds no record. */
  windowAverage(nowMs: number, windowSeconds: number): number | undefined {
    if (this.lastSecond === undefined || this.firstSecond === undefined) return undefined;
    const now = Math.floor(nowMs / 1000);
    const windowStart = now - windowSeconds + 1;
    if (this.lastSecond < windowStart) return undefined;
    const from = Math.max(windowStart, this.firstSecond);
    const to = Math.min(now, this.lastSecond);
    let sum = 0;
    for (let second = from; second <= to; second++) sum += this.totals.get(second) ?? 0;
    return sum / (to - from + 1);
  }
}
