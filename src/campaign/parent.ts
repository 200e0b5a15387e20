/**
 * A campaign's parent network and what each trial takes from it. The parent lives in the run directory's parent/
 * (a given --parent is copied there, a missing one is trained there once), its channel scores in
 * parent/scores.json (computed once); `resume` and later rounds reuse both. Each trial's init is then plain data.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildNet } from '../nets/registry.js';
import { baseWidths } from '../nets/resolve.js';
import type { NetSpec, WidthConfig } from '../nets/types.js';
import { checkCriterion, scoringTemperature } from '../pruning/importance.js';
import { keptFor, PARENT_SCORE_BATCHES, scoreParent, type ParentScores } from '../pruning/parent-scores.js';
import { readParent } from '../pruning/prune.js';
import type { CompiledSpace } from '../space/compile.js';
import { METADATA_JSON, MODEL_JSON, WEIGHTS_BIN } from '../training/save.js';
import { runTrial, startBackend } from '../training/trial.js';
import { UserError } from '../util/errors.js';
import { deriveSeed } from '../util/rng.js';
import type { JobInit } from './job.js';
import type { CampaignConfig, CampaignInit } from './types.js';

/** The parent's folder inside the run directory; jobs name it relative to the run directory. */
export const PARENT_DIR = 'parent';
export const SCORES_JSON = 'scores.json';
/** Where a parent is trained or copied before it is renamed into place, so parent/ is always whole. */
export const PARENT_DRAFT = 'parent.draft';

/**
 * Checks an init request against the space before anything is written: the parent is a prunespace model of the
 * space's network (family, input, classes, shortcut) at least as wide as every width the space can sample.
 */
export function checkCampaignInit(init: CampaignInit, space: CompiledSpace): void {
  if (init.mode === 'scratch') return;
  if (init.mode === 'inherit') {
    checkCriterion(init.criterion);
    scoringTemperature(init.criterion, init.scoring?.temperature);
  }
  if (init.mode === 'distill' && !(Number.isInteger(init.students) && init.students >= 1)) throw new UserError(`--students expects an integer >= 1, got ${init.students}`);
  if (init.parent === undefined) return;
  const parent = readParent(init.parent);
  const want = space.net.ref;
  const got = parent.spec.ref;
  const describe = (r: NetSpec['ref']) => `${r.family} on ${r.input.join('x')} with ${r.classes} classes${r.family.startsWith('resnet') ? `, ${r.shortcut} shortcuts` : ''}`;
  if (got.family !== want.family || got.classes !== want.classes || got.shortcut !== want.shortcut || got.input.join('x') !== want.input.join('x')) {
    throw new UserError(`--parent ${init.parent} is a ${describe(got)}; the space samples a ${describe(want)}`);
  }
  const pw = parent.metadata.widths;
  for (const c of space.choices) {
    const most = c.widths[c.widths.length - 1];
    if (pw[c.group.id] < most) throw new UserError(`--parent ${init.parent}: group ${c.group.name} has ${pw[c.group.id]} channels, the space samples up to ${most}`);
  }
}

/** What the coordinator hands each trial. */
export interface InitPlan {
  /** The job's init for a trial of these widths; undefined for scratch. */
  initFor(widths: WidthConfig): JobInit | undefined;
}

/** Copies the model files of a given parent (model.json, its weight files, prunespace.json) into `to`. */
function copyParent(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  const model = JSON.parse(readFileSync(join(from, MODEL_JSON), 'utf8')) as { weightsManifest?: { paths: string[] }[] };
  const weights = model.weightsManifest?.flatMap((m) => m.paths) ?? [WEIGHTS_BIN];
  for (const f of [MODEL_JSON, METADATA_JSON, ...weights]) copyFileSync(join(from, f), join(to, f));
}

/** Trains the space's original network (the family's full widths) with the campaign's settings into `to`. */
async function trainParent(config: CampaignConfig, epochs: number | undefined, to: string, log: (l: string) => void): Promise<void> {
  const spec = buildNet(config.net);
  const widths = baseWidths(spec);
  const settings = { ...config.settings, backend: config.backend as CampaignConfig['settings']['backend'], ...(epochs !== undefined ? { epochs } : {}) };
  log(`parent: training ${spec.ref.family} at full widths (${widths.join(',')}) once for this campaign`);
  const r = await runTrial({ net: config.net, widths, settings, seed: deriveSeed(config.seed, 'parent'), saveDir: to }, (c) =>
    log(`parent: epoch ${c.epoch}  train loss ${c.trainLoss.toFixed(4)}  val err ${(100 * c.valError).toFixed(2)}%`),
  );
  if (r.status !== 'complete') throw new UserError(`the campaign's parent failed to train (${r.error ?? 'no reason given'}); fix the settings or pass --parent DIR`);
  log(`parent: validation error ${(100 * (r.valError ?? NaN)).toFixed(2)}%, saved in ${PARENT_DIR}/`);
}

/**
 * Makes sure the run directory holds the parent and (inherit) its scores, then plans every trial's init. Only the
 * coordinator calls it, under the campaign lock; what exists is reused, never recomputed.
 */
export async function prepareInit(dir: string, config: CampaignConfig, log: (l: string) => void): Promise<InitPlan> {
  const init = config.init ?? { mode: 'scratch' };
  if (init.mode === 'scratch') return { initFor: () => undefined };
  const parentDir = join(dir, PARENT_DIR);
  if (!existsSync(join(parentDir, METADATA_JSON))) {
    const draft = join(dir, PARENT_DRAFT);
    rmSync(draft, { recursive: true, force: true });
    if (init.parent !== undefined) {
      if (!existsSync(join(init.parent, MODEL_JSON))) throw new UserError(`--parent ${init.parent}: the parent this campaign was started with is gone, and ${parentDir} holds no copy`);
      copyParent(init.parent, draft);
      log(`parent: copied ${init.parent} into ${PARENT_DIR}/`);
    } else {
      await trainParent(config, init.mode === 'inherit' ? init.parentEpochs : undefined, draft, log);
    }
    rmSync(parentDir, { recursive: true, force: true });
    renameSync(draft, parentDir);
  } else {
    log(`parent: reusing ${PARENT_DIR}/ of the run directory`);
  }
  if (init.mode === 'distill') {
    readParent(parentDir);
    return {
      initFor: () => ({
        mode: 'distill', parent: PARENT_DIR, students: init.students,
        ...(init.options ? { options: init.options } : {}), ...(init.rankOn ? { rankOn: init.rankOn } : {}),
      }),
    };
  }
  const scores = await parentScores(dir, config, init);
  const spec = buildNet(config.net);
  return { initFor: (widths) => ({ mode: 'inherit', parent: PARENT_DIR, criterion: init.criterion, kept: keptFor(spec, scores, widths) }) };
}

/** The parent-scoring settings of an inherit init, defaults filled in (prune's: 4 batches, the criterion's T, BN in inference mode). */
function scoringOf(init: Extract<CampaignInit, { mode: 'inherit' }>): { batches: number; temperature: number; bnTrain: boolean } {
  return {
    batches: init.scoring?.scoreBatches ?? PARENT_SCORE_BATCHES,
    temperature: scoringTemperature(init.criterion, init.scoring?.temperature),
    bnTrain: init.scoring?.bnTrain ?? false,
  };
}

/** The cached scores of the run directory's parent, computed (once) where absent. */
async function parentScores(dir: string, config: CampaignConfig, init: Extract<CampaignInit, { mode: 'inherit' }>): Promise<ParentScores> {
  const path = join(dir, PARENT_DIR, SCORES_JSON);
  if (existsSync(path)) {
    const cached = JSON.parse(readFileSync(path, 'utf8')) as ParentScores;
    const want = scoringOf(init);
    // Weight-only criteria read no batches; scores cached before temperatures were recorded were taken at T = 1.
    const same = cached.criterion === init.criterion && cached.combine === init.combine &&
      (cached.scoreBatches === 0 || ((cached.temperature ?? 1) === want.temperature && (cached.bnTrain ?? false) === want.bnTrain));
    if (same) return cached;
    throw new UserError(`${path} holds ${cached.criterion} (${cached.combine}) scores of other settings than the campaign asks for (${init.criterion}, ${init.combine}); remove the file to rescore`);
  }
  const backend = await startBackend(config.backend as CampaignConfig['settings']['backend'], config.settings.threads);
  const scores = await scoreParent(join(dir, PARENT_DIR), backend.selected.engine, {
    criterion: init.criterion,
    combine: init.combine,
    settings: config.settings,
    seed: deriveSeed(config.seed, 'parent-scores'),
    ...scoringOf(init),
  });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(scores) + '\n');
  renameSync(tmp, path);
  return scores;
}
