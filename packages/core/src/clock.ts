/**
 * Time is passed in, never read inline, so that ramp, drain and lease logic
 * are tested as tables of instants. `now` is wall-clock (ms since epoch, used
 * for timestamps stored in the table); `monotonic` never goes backwards and
 * is the only clock used to measure waits (lease takeover compares no wall
 * clocks of different machines).
 */
export interface Clock {
  now(): number;
  monotonic(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
};

/** A clock that only moves when told to: for tests and simulations. */
export class ManualClock implements Clock {
  constructor(
    private wall = Date.UTC(2026, 0, 1),
    private mono = 0,
  ) {}
  now(): number {
    return this.wall;
  }
  monotonic(): number {
    return this.mono;
  }
  advance(ms: number): void {
    this.wall += ms;
    this.mono += ms;
  }
}
