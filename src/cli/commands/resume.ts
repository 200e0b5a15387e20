/** `prunespace resume`: continue a campaign: completed trials stay, interrupted ones rerun, failed ones retry. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { runCampaign } from '../../campaign/campaign.js';
import { isCampaignDir } from '../../campaign/store.js';
import { UserError } from '../../util/errors.js';
import { intFlag } from '../parse.js';
import { addPoolFlags, poolOptions, reportSummary, type PoolFlags } from './search.js';

export function registerResume(program: Command): void {
  const cmd = program
    .command('resume')
    .description('Continue a campaign: completed trials are kept, interrupted ones run again, failed ones retry up to --max-attempts')
    .argument('<run>', 'campaign directory (runs/NAME)')
    .option('--max-attempts <k>', "attempts per trial (default: the campaign's own setting)", intFlag('--max-attempts', { min: 1 }));
  addPoolFlags(cmd).action(async (run: string, flags: PoolFlags) => {
    if (!isCampaignDir(run)) throw new UserError(`${run} is not a campaign directory (no campaign.db); start one with prunespace search`);
    reportSummary(await runCampaign(resolve(run), poolOptions(flags)));
  });
}
