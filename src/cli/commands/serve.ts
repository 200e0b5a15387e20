/** `prunespace serve`: a live local web view of one or more campaigns, read-only on their stores. */
import type { Command } from 'commander';
import { startServer } from '../../serve/server.js';
import { intFlag } from '../parse.js';

interface Options {
  port: number;
  host: string;
  token?: string;
  poll: number;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('Serve a live web view of campaigns (states, progress, failures, curves, EDFs, the reference panel, the full report), read-only')
    .argument('<runs...>', 'campaign directories; the first is the main one, the others are compared with it')
    .option('--port <p>', 'port to listen on (0: any free port)', intFlag('--port', { min: 0 }), 8765)
    .option('--host <h>', 'address to listen on; anything but loopback requires a token', '127.0.0.1')
    .option('--token <t>', 'token every request must carry (generated and printed when the host is not loopback)')
    .option('--poll <ms>', "how often the stores' change counters are read", intFlag('--poll', { min: 50 }), 1000)
    .action(async (runs: string[], opts: Options) => {
      const server = await startServer({ dirs: runs, host: opts.host, port: opts.port, token: opts.token, pollMs: opts.poll });
      const open = server.token ? `${server.url}?token=${encodeURIComponent(server.token)}` : server.url;
      console.log(`serving ${server.watchers.map((w) => w.name).join(', ')} at ${open}${server.token ? ' (requests without the token get 401)' : ''}`);
      const stop = () => void server.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
