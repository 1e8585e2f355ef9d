import { MultiBar, Presets, type SingleBar } from 'cli-progress';

/** What a long stage reports: done of total units (steps, prompts, samples), and an ETA. */
export interface StageProgress {
  readonly key: string;
  readonly label: string;
  readonly done: number;
  readonly total: number;
}

/**
 * Progress bars on stderr, one per stage (a bar is created the first time a key reports). Off a
 * terminal, cli-progress prints every bar every 10 s instead of redrawing, which keeps CI logs readable.
 */
export function createProgressBars(stream: NodeJS.WriteStream = process.stderr) {
  const multi = new MultiBar(
    {
      stream,
      format: '{label} |{bar}| {value}/{total} {percentage}% | ETA {eta_formatted}',
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      noTTYOutput: true,
      notTTYSchedule: 10_000,
      etaBuffer: 50,
    },
    Presets.shades_classic,
  );
  const bars = new Map<string, SingleBar>();
  return {
    update(p: StageProgress): void {
      let bar = bars.get(p.key);
      if (bar === undefined) {
        bar = multi.create(Math.max(1, p.total), 0, { label: p.label.padEnd(28) });
        bars.set(p.key, bar);
      }
      bar.setTotal(Math.max(1, p.total));
      bar.update(Math.min(p.done, p.total), { label: p.label.padEnd(28) });
    },
    /** Prints a line above the bars. */
    log(line: string): void {
      multi.log(`${line}\n`);
    },
    stop(): void {
      multi.stop();
    },
  };
}

export type ProgressBars = ReturnType<typeof createProgressBars>;
