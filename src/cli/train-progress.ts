/** Progress of `prunespace train` within an epoch: one live line on a terminal, plain periodic lines otherwise. */
import { formatDuration } from '../campaign/progress.js';
import type { StepProgress } from '../training/train.js';

export interface TrainProgressOptions {
  write: (text: string) => void;
  /** A live line rewritten in place (terminal) or plain lines. */
  tty: boolean;
  /** Plain lines per epoch (default 10); the epoch's own line follows its last step. */
  linesPerEpoch?: number;
  /** Terminal redraws at most this often (default 250 ms). */
  redrawMs?: number;
  now?: () => number;
}

/** One progress text: where the run is, its speed, the mean loss since the last report and the training time left. */
export function progressText(p: StepProgress, loss: number, epochs: number | undefined): string {
  const inEpoch = p.step - (p.epoch - 1) * p.stepsPerEpoch;
  const rate = p.seconds > 0 ? (p.step * p.images) / p.seconds : 0;
  const eta = p.step > 0 ? (p.seconds / p.step) * (p.totalSteps - p.step) : NaN;
  return (
    `epoch ${p.epoch}${epochs ? `/${epochs}` : ''}  step ${inEpoch}/${p.stepsPerEpoch} ` +
    `(${p.step}/${p.totalSteps} in all)  ${rate.toFixed(1)} img/s  loss ${loss.toFixed(4)}  ETA ${formatDuration(eta)} of training`
  );
}

/** A step hook that reports progress, and `clear` to call before printing anything else (the epoch's line). */
export function trainProgress(opts: TrainProgressOptions, epochs: number | undefined): { onStep: (p: StepProgress) => void; clear: () => void } {
  const now = opts.now ?? (() => performance.now());
  const every = opts.linesPerEpoch ?? 10;
  let live = false;
  let lastDraw = -Infinity;
  let lossSum = 0;
  let images = 0;
  const clear = (): void => {
    if (live) opts.write('\r\x1b[K');
    live = false;
  };
  const onStep = (p: StepProgress): void => {
    lossSum += p.loss * p.images;
    images += p.images;
    const inEpoch = p.step - (p.epoch - 1) * p.stepsPerEpoch;
    const lastOfEpoch = inEpoch === p.stepsPerEpoch || p.step === p.totalSteps;
    let due: boolean;
    if (opts.tty) {
      due = now() - lastDraw >= (opts.redrawMs ?? 250) || lastOfEpoch;
    } else {
      // Plain lines at each tenth of the epoch; the epoch line itself reports its end.
      const slot = (k: number) => Math.floor((every * k) / p.stepsPerEpoch);
      due = !lastOfEpoch && slot(inEpoch) !== slot(inEpoch - 1);
    }
    if (!due) return;
    const text = progressText(p, lossSum / images, epochs);
    lossSum = 0;
    images = 0;
    lastDraw = now();
    if (opts.tty) {
      opts.write(`\r\x1b[K${text}`);
      live = true;
    } else {
      opts.write(`${text}\n`);
    }
  };
  return { onStep, clear };
}
