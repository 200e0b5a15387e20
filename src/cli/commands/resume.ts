/** `prunespace resume`: continue a campaign: completed trials stay, interrupted ones rerun, failed ones retry. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { isCampaignDir, openCampaign } from '../../campaign/store.js';
import { UserError } from '../../util/errors.js';
import { intFlag } from '../parse.js';
import { parseSpace } from '../../space/load.js';
import { latencyModelFor } from '../latency.js';
import { runRounds } from '../rounds.js';
import { addPoolFlags, checkQueueFlag, poolOptions, reportSummary, roundsOptions, type PoolFlags } from './search.js';

export function registerResume(program: Command): void {
  const cmd = program
    .command('resume')
    .description('Continue a campaign: completed trials are kept, interrupted ones run again, failed ones retry up to --max-attempts')
    .argument('<run>', 'campaign directory (runs/NAME)')
    .option('--max-attempts <k>', "attempts per trial (default: the campaign's own setting)", intFlag('--max-attempts', { min: 1 }))
    .option('--rounds <r>', "total rounds, to extend a campaign with refined rounds (default: the campaign's own)", intFlag('--rounds', { min: 1 }))
    .option('--round-samples <n>', "candidates per new refined round (default: the campaign's own)", intFlag('--round-samples', { min: 1 }));
  addPoolFlags(cmd).action(async (run: string, flags: PoolFlags & { rounds?: number; roundSamples?: number }) => {
    if (!isCampaignDir(run)) throw new UserError(`${run} is not a campaign directory (no campaign.db); start one with prunespace search`);
    await checkQueueFlag(flags);
    const reader = openCampaign(run, { readonly: true });
    const config = reader.config();
    reader.close();
    // Refined rounds of a latency regime sample against the same table (read from the file the campaign recorded).
    const log = (line: string) => process.stderr.write(`prunespace: ${line}\n`);
    const latency = await latencyModelFor(parseSpace(config.space, config.spacePath), { file: config.latencyModel?.table, log });
    const rounds = { ...roundsOptions(config, flags.rounds, flags.roundSamples), ...(latency ? { predictLatency: latency.predict } : {}) };
    reportSummary(await runRounds(resolve(run), poolOptions(flags), rounds));
  });
}
