// A pool of runner pods under a load trace, one simulated second at a time: pods take
// `podStartSeconds` to become Ready, each Ready pod serves up to `podCapacity` requests at once,
// requests beyond that wait (and count as in flight, as the runner's in-flight gauge does; it also
// reports those waiting and the requests answered), every
// Ready pod is scraped each second, and the autoscaler decides every `decisionSeconds`.

export interface Trace {
  name: string;
  seconds: number;
  /** The concurrency the load offers at second t (requests in flight if the pool had room for all). */
  demand(second: number): number;
  /** Seconds from creating a pod to its being Ready (default 0: Ready by the next second). */
  podStartSeconds?: number;
  /** At `atSecond`, `pods` Ready pods are killed; their replacements start like any new pod. */
  vanish?: { atSecond: number; pods: number };
  /** From `fromSecond` for `seconds`, one Ready pod keeps serving but its scrape fails. */
  silent?: { fromSecond: number; seconds: number };
}

/**
 * One pod's scrape in one second, as the runner reports it: requests in flight (those waiting
 * for room included), those waiting, and the requests it has answered since it started;
 * undefined when the scrape failed.
 */
export interface Scrape {
  pod: number;
  sample: { inFlight: number; waiting: number; answered: number } | undefined;
}

/** What the harness drives: scrapes every second, a decision every few. */
export interface SimulatedAutoscaler {
  observe(nowMs: number, scrapes: Scrape[]): void;
  /** The replicas to run, or undefined to keep the current scale. */
  decide(nowMs: number, readyPods: number, replicas: number): number | undefined;
}

export interface PoolSettings {
  /** Concurrency per pod the autoscaler aims for; the need is ceil(demand / this). */
  targetPerPod: number;
  /** Requests one pod serves at once; beyond it they wait. */
  podCapacity: number;
  decisionSeconds: number;
  minReplicas: number;
  /** A waiting request gives up after this long; the wait queue holds at most this many seconds of arrivals. */
  requestTimeoutSeconds: number;
  /** How long one request takes to serve when it does not wait. */
  serviceSeconds: number;
}

export interface SimulationResult {
  /** Per second: replicas asked for, Ready pods, the need. */
  replicas: number[];
  ready: number[];
  need: number[];
  /**
   * Seconds from each rise of the need until the replicas met it (the worst one); a rise the
   * load takes back before that counts until it is taken back.
   */
  secondsToReach: number;
  /** Times the replica count turned from going up to going down or back. */
  directionChanges: number;
  /** The most replicas ever asked for, over the highest need of the trace. */
  peakOverProvisioning: number;
  /** Replica-seconds over the ideal's (the need, second by second). */
  replicaSecondsOverIdeal: number;
  /** The largest ratio of replicas before to after one decision that lowered them. */
  worstDropPerDecision: number;
  /** Seconds in which Ready capacity was below the demand. */
  secondsShort: number;
}

interface Pod {
  id: number;
  readyAt: number;
}

export function simulate(trace: Trace, settings: PoolSettings, autoscaler: SimulatedAutoscaler): SimulationResult {
  const start = trace.podStartSeconds ?? 0;
  const needAt = (second: number) => Math.max(settings.minReplicas, Math.ceil(trace.demand(second) / settings.targetPerPod));
  let nextId = 0;
  const initial = needAt(0);
  // The pool starts settled at the need of second 0.
  let pods: Pod[] = Array.from({ length: initial }, () => ({ id: nextId++, readyAt: -1 }));
  let replicas = initial;
  let waiting = 0;
  let silentPod: number | undefined;
  const answeredByPod = new Map<number, number>();
  const result = { replicas: [] as number[], ready: [] as number[], need: [] as number[] };
  const drops: number[] = [];

  for (let second = 0; second < trace.seconds; second++) {
    const nowMs = second * 1000;
    if (trace.vanish && second === trace.vanish.atSecond) {
      const killed = new Set(pods.filter((pod) => pod.readyAt <= second).slice(0, trace.vanish.pods).map((pod) => pod.id));
      pods = pods.filter((pod) => !killed.has(pod.id));
    }
    // The Deployment keeps `replicas` pods: new ones start, the newest go first when lowered.
    while (pods.length < replicas) pods.push({ id: nextId++, readyAt: second + start });
    if (pods.length > replicas) pods = [...pods].sort((a, b) => a.readyAt - b.readyAt).slice(0, replicas);
    const readyPods = pods.filter((pod) => pod.readyAt <= second);

    // In requests per second: arrivals, what the Ready pods can answer, what waits.
    const arrivals = trace.demand(second) / settings.serviceSeconds;
    const servable = (readyPods.length * settings.podCapacity) / settings.serviceSeconds;
    const served = Math.min(arrivals + waiting, servable);
    waiting = Math.min(arrivals + waiting - served, arrivals * settings.requestTimeoutSeconds);
    const active = served * settings.serviceSeconds;
    if (trace.silent && second >= trace.silent.fromSecond && second < trace.silent.fromSecond + trace.silent.seconds) {
      silentPod ??= readyPods[0]?.id;
    } else silentPod = undefined;
    const share = readyPods.length > 0 ? 1 / readyPods.length : 0;
    for (const pod of readyPods) answeredByPod.set(pod.id, (answeredByPod.get(pod.id) ?? 0) + served * share);
    autoscaler.observe(
      nowMs,
      readyPods.map((pod) => ({
        pod: pod.id,
        sample: pod.id === silentPod ? undefined : { inFlight: (active + waiting) * share, waiting: waiting * share, answered: answeredByPod.get(pod.id)! },
      })),
    );

    if (second > 0 && second % settings.decisionSeconds === 0) {
      const desired = autoscaler.decide(nowMs, readyPods.length, replicas);
      if (desired !== undefined) {
        if (desired < replicas) drops.push(replicas / Math.max(1, desired));
        replicas = desired;
      }
    }
    result.replicas.push(replicas);
    result.ready.push(readyPods.length);
    result.need.push(needAt(second));
  }
  return { ...result, ...measure(result, drops, trace, settings) };
}

function measure(
  series: { replicas: number[]; ready: number[]; need: number[] },
  drops: number[],
  trace: Trace,
  settings: PoolSettings,
): Omit<SimulationResult, 'replicas' | 'ready' | 'need'> {
  const { replicas, ready, need } = series;
  let secondsToReach = 0;
  for (let second = 1; second < need.length; second++) {
    if (need[second]! <= need[second - 1]!) continue;
    let reached = second;
    while (reached < need.length && replicas[reached]! < need[second]! && need[reached]! >= need[second]!) reached++;
    secondsToReach = Math.max(secondsToReach, reached - second);
  }
  let directionChanges = 0;
  let direction = 0;
  for (let second = 1; second < replicas.length; second++) {
    const step = Math.sign(replicas[second]! - replicas[second - 1]!);
    if (step !== 0 && direction !== 0 && step !== direction) directionChanges++;
    if (step !== 0) direction = step;
  }
  const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
  let secondsShort = 0;
  for (let second = 0; second < need.length; second++) {
    if (ready[second]! * settings.podCapacity < trace.demand(second)) secondsShort++;
  }
  return {
    secondsToReach,
    directionChanges,
    peakOverProvisioning: Math.max(...replicas) / Math.max(...need),
    replicaSecondsOverIdeal: sum(replicas) / sum(need),
    worstDropPerDecision: drops.length > 0 ? Math.max(...drops) : 1,
    secondsShort,
  };
}

/** A seeded generator (mulberry32): the same trace every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
