/** A real redis-server for the queue tests: loopback, a free port, a password, a temporary directory. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { tempDir, cliProcess, exited } from './campaign-helpers.js';

export const PASSWORD = 'test-secret';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export class RedisServer {
  child: ChildProcess | null = null;
  readonly dir = tempDir('redis');
  private constructor(readonly port: number) {}

  static async start(opts: { persist?: boolean } = {}): Promise<RedisServer> {
    const r = new RedisServer(await freePort());
    await r.launch(opts);
    return r;
  }

  get url(): string {
    return `redis://:${PASSWORD}@127.0.0.1:${this.port}`;
  }

  async launch(opts: { persist?: boolean } = {}): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--requirepass', PASSWORD, '--dir', this.dir,
      '--save', '', '--appendonly', opts.persist ? 'yes' : 'no', '--maxmemory-policy', 'noeviction'];
    this.child = spawn('redis-server', args, { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      try {
        const c = new Redis({ port: this.port, host: '127.0.0.1', password: PASSWORD, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
        c.on('error', () => {});
        await c.connect();
        await c.ping();
        c.disconnect();
        return;
      } catch {
        await new Promise((res) => setTimeout(res, 50));
      }
    }
    throw new Error('redis-server did not start');
  }

  client(): Redis {
    const c = new Redis({ port: this.port, host: '127.0.0.1', password: PASSWORD, maxRetriesPerRequest: null });
    c.on('error', () => {});
    return c;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGKILL');
    await exited(child);
  }
}

/** A `prunespace worker` process; its stderr is collected. */
export function startWorker(url: string, args: string[] = []) {
  // The child inherits this process's environment (PRUNESPACE_QUEUE_LOCK_MS: a short BullMQ lock for the tests).
  const child = cliProcess(['worker', '--queue', url, '--workers', '1', ...args]);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return { child, stderr: () => stderr };
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await exited(child);
}
