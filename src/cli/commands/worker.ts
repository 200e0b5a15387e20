/** `prunespace worker`: a host that trains trial jobs from a campaign queue (BullMQ on Redis). */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { UserError } from '../../util/errors.js';
import { intFlag } from '../parse.js';

interface WorkerFlags {
  queue: string;
  workers?: number;
  gpus?: string;
  trialsPerGpu?: number;
  dataDir?: string;
  modelsDir: string;
  runsDir: string;
  insecure: boolean;
  waitForCampaign: number;
}

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('Train trials from a campaign queue on this host (start the campaign with prunespace search --queue URL)')
    .requiredOption('--queue <url>', 'redis://[user:password@]HOST:PORT[/DB] or rediss://…')
    .option('--workers <n>', 'trials at once on this host (wasm/cpu: worker threads)', intFlag('--workers', { min: 1 }))
    .option('--gpus <ids>', 'native engines: GPU ids, e.g. 0,1 (one child process per GPU and trial slot)')
    .option('--trials-per-gpu <k>', 'trials at once on each GPU', intFlag('--trials-per-gpu', { min: 1 }))
    .option('--data-dir <dir>', "this host's directory of the campaign's dataset (default: the dataset's usual place)")
    .option('--models-dir <dir>', 'where saved models go: <dir>/<campaign>/trial-<index>', 'prunespace-models')
    .option('--runs-dir <dir>', "where this host finds the campaigns' run directories: an inheriting or distilling campaign's parent is read from <dir>/<campaign>/parent (a shared runs/, or a copy)", 'runs')
    .option('--insecure', 'allow a password-less redis:// URL to a host off loopback', false)
    .option('--wait-for-campaign <seconds>', 'wait this long for a campaign to appear, to check it before taking work', intFlag('--wait-for-campaign', { min: 0 }), 10)
    .action(async (flags: WorkerFlags) => {
      if (flags.gpus && flags.workers) throw new UserError('--workers and --gpus exclude each other: --gpus 0,1 --trials-per-gpu K, or --workers W');
      if (flags.trialsPerGpu && !flags.gpus) throw new UserError('--trials-per-gpu needs --gpus');
      const gpus = flags.gpus?.split(',').map((g) => g.trim());
      if (gpus?.some((g) => !/^\d+$/.test(g))) throw new UserError(`--gpus expects comma-separated GPU ids like 0,1, got '${flags.gpus}'`);
      const { runWorker } = await import('../../campaign/queue-worker.js');
      let stopNow: () => void = () => {};
      const stop = new Promise<void>((r) => (stopNow = r));
      let signals = 0;
      const onSignal = () => {
        if (++signals > 1) process.exit(130);
        stopNow();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      await runWorker(
        {
          url: flags.queue,
          insecure: flags.insecure,
          workers: flags.workers,
          gpus,
          trialsPerGpu: flags.trialsPerGpu,
          dataDir: flags.dataDir,
          modelsDir: resolve(flags.modelsDir),
          runsDir: resolve(flags.runsDir),
          lockMs: process.env.PRUNESPACE_QUEUE_LOCK_MS ? Number(process.env.PRUNESPACE_QUEUE_LOCK_MS) : undefined,
          waitForCampaignMs: flags.waitForCampaign * 1000,
          log: (line) => process.stderr.write(`prunespace: ${line}\n`),
        },
        stop,
      );
    });
}
