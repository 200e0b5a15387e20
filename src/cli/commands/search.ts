/** `prunespace search`: sample a space, train every candidate on a worker pool, record all trials in runs/NAME. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { DEFAULT_REFERENCE_SEEDS, discardNewCampaign, prepareCampaign } from '../../campaign/create.js';
import type { RunOptions, RunSummary } from '../../campaign/campaign.js';
import type { CampaignConfig } from '../../campaign/types.js';
import { UserError, isUserError } from '../../util/errors.js';
import { intFlag, numberFlag } from '../parse.js';
import { sparsityFlag } from './distill.js';
import { RANK_ON } from '../../training/types.js';
import { addTrainingFlags, trainSettings } from '../training-flags.js';
import { runRounds, type RoundsOptions } from '../rounds.js';
import { campaignInit, checkAgainstStored, DEFAULT_CRITERION, DEFAULT_ETA, discardStoredCampaign, resolveSearch, rungsPlan, storeCampaign } from '../campaign-file.js';
import { COMBINES, criterionNames } from '../../pruning/importance.js';
import { loadSpace } from '../../space/load.js';
import { describeFit, latencyModelFor, latencyRecord } from '../latency.js';


export interface PoolFlags {
  workers?: number;
  gpus?: string[];
  executor?: 'thread' | 'process';
  maxAttempts?: number;
  queue?: string;
  insecure?: boolean;
  trialTimeout?: number;
}

function gpuList(value: string): string[] {
  const ids = value.split(',').map((s) => s.trim());
  if (ids.some((id) => !/^\d+$/.test(id))) throw new UserError(`--gpus expects comma-separated GPU ids like 0,1, got '${value}'`);
  return ids;
}

/** Flags that choose how trials are executed; they may change between a campaign's sessions. */
export function addPoolFlags(cmd: Command): Command {
  return cmd
    .option('--workers <n>', 'trials trained at once (wasm/cpu: worker threads; default one per core)', intFlag('--workers', { min: 1 }))
    .option('--gpus <ids>', 'native engines (torch, tensorflow): one child process per GPU id, e.g. 0,1', gpuList)
    .addOption(
      // Internal: runs wasm/cpu trials in child processes to exercise the per-GPU process path without a GPU.
      new Option('--executor <kind>', 'thread or process').choices(['thread', 'process']).hideHelp(),
    )
    .option('--queue <url>', 'run trials on `prunespace worker` hosts through BullMQ: redis://[user:password@]HOST:PORT[/DB] or rediss://')
    .option('--insecure', 'allow a password-less redis:// URL to a host off loopback', false)
    .option('--trial-timeout <seconds>', 'cancel and fail a trial that runs longer (it retries while attempts are left)', intFlag('--trial-timeout', { min: 1 }));
}

/** With --queue, proves Redis answers before anything is written (one line and exit 2 otherwise). */
export async function checkQueueFlag(flags: PoolFlags): Promise<void> {
  if (!flags.queue) return;
  const { connectQueue, parseQueueUrl } = await import('../../campaign/queue.js');
  (await connectQueue(parseQueueUrl(flags.queue, { insecure: flags.insecure }))).disconnect();
}

export function poolOptions(flags: PoolFlags): RunOptions {
  return {
    workers: flags.workers, gpus: flags.gpus, executor: flags.executor, maxAttempts: flags.maxAttempts, handleSignals: true,
    queue: flags.queue, insecure: flags.insecure, trialTimeoutMs: flags.trialTimeout ? flags.trialTimeout * 1000 : undefined,
  };
}

/** The rounds a campaign was launched with; `resume --rounds` may extend them. */
export function roundsOptions(config: CampaignConfig, rounds?: number, roundSamples?: number): RoundsOptions {
  return {
    rounds: rounds ?? config.rounds ?? 1,
    samples: roundSamples ?? config.roundSamples,
    log: (line) => process.stderr.write(`prunespace: ${line}\n`),
  };
}

/** Final lines of a session; exit code 130 when Ctrl-C stopped it early. */
export function reportSummary(summary: RunSummary): void {
  const { counts, dir } = summary;
  const lines = [
    `${counts.complete} complete, ${counts.failed} failed, ${counts.waiting + counts.running} waiting` +
      `${counts.pruned ? `, ${counts.pruned} pruned at a lower rung` : ''}${counts.paused ? `, ${counts.paused} paused between rungs` : ''} of ${counts.total} trials`,
    `results: ${dir}/campaign.db, ${summary.csv}, ${summary.jsonl}`,
  ];
  if (summary.interrupted) lines.push(`stopped early; continue with: prunespace resume ${dir}`);
  else lines.push(`summarise with: prunespace status ${dir} (or prunespace report ${dir})`);
  process.stderr.write(lines.join('\n') + '\n');
  if (summary.interrupted) process.exitCode = 130;
}


export function registerSearch(program: Command): void {
  const cmd = addTrainingFlags(program
    .command('search')
    .description('Sample N subnetworks from a space, train each on a worker pool, and record every trial in a campaign directory')
    .argument('[space]', 'space file (JSON); or give --config')
    .option('--config <file>', 'campaign file (JSON, e.g. campaigns/demo-fmnist.json): space, training, launch, rounds, analysis; flags override it')
    .option('--out <dir>', 'campaign directory, e.g. runs/NAME (must be new, empty, or this same campaign; default with --config: runs/<name>)')
    .option('--samples <n>', 'number of candidates to sample and train (required without --config)', intFlag('--samples', { min: 1 })),
    { required: true, fallback: 1, mandatory: false },
  )
    .option('--seed <s>', 'campaign seed: fixes the candidates and every trial seed', intFlag('--seed', { min: 0 }), 0)
    .option('--max-attempts <k>', 'attempts per trial: a failed trial is retried until it has had this many', intFlag('--max-attempts', { min: 1 }), 2)
    .option('--save-models', 'save every trained subnetwork (tfjs model.json + weights) in <out>/models/trial-<index>', false)
    .option('--rounds <r>', 'sample-train-analyse-refine rounds; each refined space is written to <out>/space-r<k>.json', intFlag('--rounds', { min: 1 }), 1)
    .option('--round-samples <n>', 'candidates per refined round (default: --samples)', intFlag('--round-samples', { min: 1 }))
    .option('--reference-seeds <k>', 'train the uniformly pruned network at the regime\'s FLOPs (one keep ratio in every group) with K seeds, first, ' +
      'and compare the best candidates with it in status and report (0: none)', intFlag('--reference-seeds', { min: 0 }), DEFAULT_REFERENCE_SEEDS)
    .option('--no-reference', 'train no uniform reference (same as --reference-seeds 0)')
    .addOption(new Option('--init <mode>', "how trials start: scratch (seeded initialisation; default) or inherit (the parent's top channels by --criterion, then fine-tuned with these training settings)").choices(['scratch', 'inherit']))
    .option('--parent <dir>', 'a saved prunespace model of the space\'s network (train --save, search --save-models); copied into <out>/parent. --init inherit without it trains the full network once into <out>/parent')
    .option('--criterion <name>', `--init inherit: importance measure choosing the kept channels (${criterionNames().join(', ')}; default ${DEFAULT_CRITERION}); scores computed once into <out>/parent/scores.json`)
    .addOption(new Option('--combine <how>', "--init inherit: how a group's coupled convs' scores combine (default sum)").choices([...COMBINES]))
    .option('--parent-epochs <n>', '--init inherit without --parent: epochs of the parent the campaign trains (default --epochs)', intFlag('--parent-epochs', { min: 1 }))
    .addOption(new Option('--train <mode>', 'supervised (default) or distill: each trial distils --parent towards its sampled widths without labels (labels only evaluate: the validation error reported)').choices(['supervised', 'distill']))
    .option('--students <n>', '--train distill: students distilled together per trial (default 2)', intFlag('--students', { min: 1 }))
    .addOption(new Option('--rank-on <metric>', '--train distill: what each trial\'s validation error is, and so what the population is ranked, analysed and refined on: ' +
      'agreement (default; share of validation images whose class differs from the parent\'s, no labels), distill-loss (KL to the parent), labels (labelled error)').choices([...RANK_ON]))
    .option('--lambda-logits <x>', '--train distill: as distill (default 1)', numberFlag('--lambda-logits', { min: 0 }))
    .option('--lambda-features <x>', '--train distill: as distill (default 1)', numberFlag('--lambda-features', { min: 0 }))
    .option('--lambda-mutual <x>', '--train distill: as distill (default 1)', numberFlag('--lambda-mutual', { min: 0 }))
    .option('--lambda-sparsity <x|auto>', '--train distill: as distill (default auto)', sparsityFlag)
    .option('--reselect-every <steps>', '--train distill: as distill (default 100)', intFlag('--reselect-every', { min: 1 }))
    .option('--sensitivity-batches <n>', '--train distill: as distill (default 4)', intFlag('--sensitivity-batches', { min: 1 }))
    .option('--bn-batches <n>', '--train distill: as distill (default 16)', intFlag('--bn-batches', { min: 1 }))
    .option('--temperature <T>', '--train distill: the logit terms\' temperature (default 4); --init inherit: the scoring loss\'s (default 200 for grasp, 1 otherwise)', numberFlag('--temperature', { above: 0 }))
    .option('--score-batches <n>', '--init inherit: batches whose gradients score the parent (default 4)', intFlag('--score-batches', { min: 1 }))
    .option('--bn-train', '--init inherit: score the parent with BN in training mode (default inference mode)')
    .option('--rungs <r>', 'successive halving over training budget: R rungs, the top one at --epochs (the final budget), rung r at 1/eta^(R-1-r) of it; ' +
      'each rung continues the best 1/eta of the one below from its checkpoint (default 1: flat)', intFlag('--rungs', { min: 1 }))
    .option('--eta <e>', `--rungs: reduction factor between rungs (default ${DEFAULT_ETA})`, intFlag('--eta', { min: 2 }))
    .addOption(new Option('--rung-mode <mode>', '--rungs: sync (default: a rung is decided once all of it is in; deterministic) or async (ASHA: promote as soon as a candidate ranks in the top 1/eta of those done)').choices(['sync', 'async']))
    .option('--finalists <f>', 'retrain the top F candidates of the last rung from scratch at the final budget, with --finalist-seeds seeds each, as the uniform reference is (default 0)', intFlag('--finalists', { min: 0 }))
    .option('--finalist-seeds <k>', "--finalists: seeds per finalist, paired seed for seed with the reference's (default: --reference-seeds)", intFlag('--finalist-seeds', { min: 1 }))
    .addOption(new Option('--measure-latency <target>', "time each completed trial's batch-1 inference (onnxruntime: CPU execution provider, 1 thread) after training; stored with the trial and shown in the report (implied by a space's regime.latency)").choices(['onnxruntime']))
    .option('--latency-table <file>', 'regime.latency: the latency table file (default ~/.cache/prunespace/latency-tables.json; built where missing, see latency-table)');
  addPoolFlags(cmd).action(async (spaceArg: string | undefined, given: Record<string, unknown>, command: Command) => {
    // A campaign file and the flags give one options object; flags typed on the command line win.
    const { spacePath, options: flags, campaign } = resolveSearch(spaceArg, given, command);
    const init = campaignInit(flags);
    const rungs = rungsPlan(flags);
    checkAgainstStored(flags.out, campaign, (line) => process.stderr.write(`${line}\n`));
    if (flags.gpus && (flags.backend === 'wasm' || flags.backend === 'cpu') && flags.executor !== 'process') {
      throw new UserError(`--gpus needs a native engine (--backend torch or tensorflow, or auto where one is installed), not --backend ${flags.backend}`);
    }
    await checkQueueFlag(flags);
    const log = (line: string) => process.stderr.write(`prunespace: ${line}\n`);
    const latency = await latencyModelFor(loadSpace(spacePath), { file: flags.latencyTable, log });
    if (latency) log(`sampling against the latency table ${latency.file}: ${describeFit(latency.fit)}`);
    const prepared = prepareCampaign({
      spacePath,
      outDir: flags.out,
      samples: flags.samples,
      seed: flags.seed,
      settings: trainSettings(flags, 1),
      maxAttempts: flags.maxAttempts,
      saveModels: flags.saveModels,
      rounds: flags.rounds,
      roundSamples: flags.roundSamples,
      referenceSeeds: flags.referenceSeeds,
      init,
      rungs,
      ...(flags.measureLatency ? { measureLatency: flags.measureLatency } : {}),
      ...(latency ? { predictLatency: latency.predict, latencyModel: latencyRecord(latency) } : {}),
    });
    if (prepared.created) storeCampaign(prepared.dir, campaign);
    for (const note of prepared.notes) process.stderr.write(`prunespace: ${note}\n`);
    if (prepared.round) {
      const r = prepared.round;
      process.stderr.write(
        `prunespace: sampled ${r.samples} candidates from ${campaign.spaceSource} (acceptance ${(100 * r.acceptanceRate).toFixed(2)}%) into ${flags.out}\n`,
      );
    }
    try {
      const rounds = { ...roundsOptions(prepared.config), ...(flags.rules ? { rules: flags.rules } : {}), ...(latency ? { predictLatency: latency.predict } : {}) };
      reportSummary(await runRounds(prepared.dir, poolOptions(flags), rounds));
    } catch (e) {
      // The input failed the first trial (e.g. missing data files): leave no half-born campaign in the way of a retry.
      if (isUserError(e) && prepared.created && discardNewCampaign(prepared.dir)) {
        discardStoredCampaign(prepared.dir);
        throw new UserError(`${e.message} (nothing kept in ${flags.out})`);
      }
      throw e;
    }
  });
}
