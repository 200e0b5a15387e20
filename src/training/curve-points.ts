/** Within-epoch curve points from the step hook: mean training loss and error over each eighth of an epoch. */
import type { StepProgress } from './train.js';
import type { CurvePoint } from './types.js';

export const POINTS_PER_EPOCH = 8;

/** Collects points as steps arrive; `take` hands over (and forgets) the points of one finished epoch. */
export class CurvePointRecorder {
  private points = new Map<number, CurvePoint[]>();
  private loss = 0;
  private wrong = 0;
  private images = 0;
  private steps = 0;

  readonly onStep = (p: StepProgress): void => {
    this.loss += p.loss * p.images;
    this.wrong += p.wrong;
    this.images += p.images;
    this.steps++;
    const inEpoch = p.step - (p.epoch - 1) * p.stepsPerEpoch;
    const slot = (k: number) => Math.floor((POINTS_PER_EPOCH * k) / p.stepsPerEpoch);
    // A point closes when the step crosses an eighth of the epoch, at the epoch's end and where this call stops (a
    // rung that stops mid-epoch). A call that resumed just before an eighth's end carries its few steps into the next
    // point rather than plotting the mean of one or two batches.
    const crossed = slot(inEpoch) !== slot(inEpoch - 1) && this.steps >= p.stepsPerEpoch / (2 * POINTS_PER_EPOCH);
    if (!crossed && inEpoch < p.stepsPerEpoch && p.step < p.stopStep) return;
    const list = this.points.get(p.epoch) ?? [];
    list.push({ epoch: p.epoch - 1 + inEpoch / p.stepsPerEpoch, trainLoss: this.loss / this.images, trainError: this.wrong / this.images });
    this.points.set(p.epoch, list);
    this.loss = this.wrong = this.images = this.steps = 0;
  };

  take(epoch: number): CurvePoint[] {
    const list = this.points.get(epoch) ?? [];
    this.points.delete(epoch);
    return list;
  }
}
