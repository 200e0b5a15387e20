/** Plain records a campaign store holds; analysis reads these and never imports training code. */
import type { NetRef, WidthConfig } from '../nets/types.js';
import type { EpochCurve, TrainSettings } from '../training/types.js';
import type { Complexity } from '../complexity/count.js';

export type TrialState = 'pending' | 'running' | 'complete' | 'failed';

export interface TrialRecord {
  index: number;
  round: number;
  widths: WidthConfig;
  seed: number;
  complexity: Complexity;
  state: TrialState;
  attempts: number;
  valError: number | null;
  testError: number | null;
  trainLoss: number | null;
  curves: EpochCurve[];
  wallSeconds: number | null;
  worker: string | null;
  error: string | null;
}

/** What a campaign was launched with; stored once per campaign. */
export interface CampaignConfig {
  name: string;
  /** The space file's contents (a copy, so the campaign survives edits to the file). */
  space: unknown;
  spacePath: string;
  net: NetRef;
  settings: TrainSettings;
  samples: number;
  seed: number;
  createdAt: string;
  versions: Record<string, string>;
  backend: string;
}
