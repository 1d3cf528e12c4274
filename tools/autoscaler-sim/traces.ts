// The load traces the simulation replays. Concurrency 70 is one pod's worth at the default
// target (100 x 0.7); each trace starts with the pool settled at its first second's need.
import { seededRandom, type Trace } from './simulate.ts';

const POD = 70;

/** Per-second values computed once, so a trace gives the same demand each time it is asked. */
function fixed(seconds: number, at: (second: number) => number): (second: number) => number {
  const values = Array.from({ length: seconds }, (_, second) => at(second));
  return (second) => values[Math.min(second, seconds - 1)]!;
}

export function loadTraces(): Trace[] {
  const noise = seededRandom(20261202);
  const sawtooth = (second: number) => 2 * POD + ((second % 60) / 60) * 8 * POD;
  const spike = (second: number) => (second >= 60 && second < 120 ? 20 * POD : 2 * POD);
  return [
    { name: 'step 5 -> 10 pods', seconds: 360, demand: fixed(360, (second) => (second < 60 ? 5 * POD : 10 * POD)) },
    { name: '10x spike for 60 s', seconds: 300, demand: fixed(300, spike) },
    {
      name: 'ramp up and down',
      seconds: 600,
      demand: fixed(600, (second) => POD + (second < 300 ? second / 300 : (600 - second) / 300) * 19 * POD),
    },
    { name: 'sawtooth 2 -> 10 pods / 60 s', seconds: 600, demand: fixed(600, sawtooth) },
    { name: 'noisy steady +-20%', seconds: 360, demand: fixed(360, () => 10 * POD * (0.8 + 0.4 * noise())) },
    { name: 'runner vanishes', seconds: 300, demand: fixed(300, () => 10 * POD), vanish: { atSecond: 120, pods: 2 }, podStartSeconds: 2 },
    { name: 'runner stops answering scrapes', seconds: 300, demand: fixed(300, () => 10 * POD), silent: { fromSecond: 60, seconds: 120 } },
    { name: '10x spike, pods 10 s to Ready', seconds: 300, demand: fixed(300, spike), podStartSeconds: 10 },
  ];
}
