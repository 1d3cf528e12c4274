// The pool's totals per second, from each Ready runner's scrape, kept in 1-second buckets for
// the stable and panic window averages. Missing data never looks like idleness: a runner whose
// scrape failed counts as busy as the busiest runner of that second, or as its own last value
// when that is higher (when none answered, as its last value).
//
// The concurrency counted is the demand, not the in-flight count: requests that wait for room
// are in flight too, and their number grows with time while the pool is short (pods starting),
// not with the load. By Little's law the pool's demand is what it serves (in flight minus
// waiting) plus the growth of its queues per second times the service time (served / answered
// per second): a growing queue adds what arrives beyond capacity, a draining one takes off what
// is drained. Without an answer in the interval to weigh with, every request in flight counts.
import { SecondBuckets } from './second-buckets.ts';

export interface RunnerScrape {
  pod: string;
  /** undefined: the scrape failed. */
  sample: { inFlight: number; waiting: number; answered: number; cpuSeconds: number } | undefined;
}

export interface WindowAverages {
  concurrency: { stable: number | undefined; panic: number | undefined; recent: number | undefined; falling: boolean };
  cpu: { stable: number | undefined; panic: number | undefined };
}

/** How much of the panic window's start the newest seconds must fall below to count as falling. */
const FALLING_RATIO = 0.9;
const TREND_SECONDS = 2;

export class PoolWindows {
  private readonly concurrency: SecondBuckets;
  private readonly cpu: SecondBuckets;
  private readonly last = new Map<string, { sample: NonNullable<RunnerScrape['sample']>; cores: number; atMs: number }>();
  private readonly stableSeconds: number;
  private readonly panicSeconds: number;

  constructor(windows: { stableSeconds: number; panicSeconds: number }) {
    this.stableSeconds = windows.stableSeconds;
    this.panicSeconds = windows.panicSeconds;
    this.concurrency = new SecondBuckets(windows.stableSeconds);
    this.cpu = new SecondBuckets(windows.stableSeconds);
  }

  /** One scrape round of the Ready runners. A round where no runner ever answered records nothing. */
  record(nowMs: number, scrapes: readonly RunnerScrape[]): void {
    // Pool-level sums over the runners that answered: requests move between runners' queues
    // (a new runner takes a share), so the queue's growth is the pool's, not any one runner's.
    let serving = 0;
    let waitingNow = 0;
    let waitingBefore = 0;
    let answeredPerSecond = 0;
    let servingOfRated = 0;
    let busiest = 0;
    let busiestCores = 0;
    let cores = 0;
    let answering = 0;
    for (const { pod, sample } of scrapes) {
      if (!sample) continue;
      answering++;
      const before = this.last.get(pod);
      const seconds = before ? (nowMs - before.atMs) / 1000 : 0;
      // Counters start again from 0 when a runner restarts: then it starts afresh here too.
      const comparable = before !== undefined && seconds > 0 && sample.cpuSeconds >= before.sample.cpuSeconds && sample.answered >= before.sample.answered;
      const runnerCores = comparable ? (sample.cpuSeconds - before.sample.cpuSeconds) / seconds : (before?.cores ?? 0);
      const runnerServing = Math.max(0, sample.inFlight - sample.waiting);
      serving += runnerServing;
      waitingNow += sample.waiting;
      // A runner seen for the first time brings its whole queue as growth.
      if (comparable) {
        waitingBefore += before.sample.waiting;
        answeredPerSecond += (sample.answered - before.sample.answered) / seconds;
        servingOfRated += runnerServing;
      }
      cores += runnerCores;
      busiest = Math.max(busiest, sample.inFlight);
      busiestCores = Math.max(busiestCores, runnerCores);
      this.last.set(pod, { sample, cores: runnerCores, atMs: nowMs });
    }
    // Little's law: what is served, plus the queue's growth per second times the service time.
    const growthPerSecond = waitingNow - waitingBefore;
    let demand = answeredPerSecond > 0 ? Math.max(0, serving + growthPerSecond * (servingOfRated / answeredPerSecond)) : serving + waitingNow;
    let known = answering;
    for (const { pod, sample } of scrapes) {
      if (sample) continue;
      const before = this.last.get(pod);
      if (!before && answering === 0) continue;
      // Busy as the busiest runner that answered (its in-flight count, queue and all), or as its own last scrape.
      demand += Math.max(busiest, before?.sample.inFlight ?? 0);
      cores += Math.max(busiestCores, before?.cores ?? 0);
      known++;
    }
    // Runners that are no longer Ready are forgotten.
    const current = new Set(scrapes.map((scrape) => scrape.pod));
    for (const pod of this.last.keys()) if (!current.has(pod)) this.last.delete(pod);
    if (known === 0) return;
    this.concurrency.record(nowMs, demand);
    this.cpu.record(nowMs, cores);
  }

  averages(nowMs: number): WindowAverages {
    const recent = this.concurrency.windowAverage(nowMs, TREND_SECONDS);
    const earlier = this.concurrency.windowAverage(nowMs - (this.panicSeconds - TREND_SECONDS) * 1000, TREND_SECONDS);
    return {
      concurrency: {
        stable: this.concurrency.windowAverage(nowMs, this.stableSeconds),
        panic: this.concurrency.windowAverage(nowMs, this.panicSeconds),
        recent,
        falling: recent !== undefined && earlier !== undefined && recent < earlier * FALLING_RATIO,
      },
      cpu: { stable: this.cpu.windowAverage(nowMs, this.stableSeconds), panic: this.cpu.windowAverage(nowMs, this.panicSeconds) },
    };
  }
}
