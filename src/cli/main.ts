/** prunespace command line: parses flags, runs one command, turns user errors into one line and exit code 2. */
import { Command, CommanderError } from 'commander';
import { isUserError } from '../util/errors.js';
import { registerCommands } from './commands/index.js';

const program = new Command();
program
  .name('prunespace')
  .description('Search network pruning spaces: sample, train, analyse and refine filter-pruned subnetworks.')
  .version('0.1.0')
  .exitOverride()
  .showHelpAfterError(false)
  .configureOutput({ outputError: (str, write) => write(`prunespace: ${str.replace(/^error: /, '').trim()}\n`) });
registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // --help and --version exit through here with code 0; flag errors were already printed.
    process.exit(e.exitCode === 0 ? 0 : 2);
  }
  if (isUserError(e)) {
    process.stderr.write(`prunespace: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
}
