/** Shared pieces of the campaign tests: a tiny space, tiny training settings, and the CLI in a child process. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCampaign } from '../src/campaign/store.js';
import type { TrialRecord } from '../src/campaign/types.js';
import type { TrainSettings } from '../src/training/types.js';

export const ROOT = new URL('..', import.meta.url).pathname;
const MAIN = join(ROOT, 'src/cli/main.ts');

/** resnet20 on 8x8x1 at 10-40% width: a trial trains in well under a second on wasm. */
export const TINY_SPACE = {
  name: 'tiny-resnet20',
  network: { family: 'resnet20', input: '8x8x1', classes: 3 },
  samplers: [{ select: { kinds: ['stage', 'inner'] }, keep: { min: 0.1, max: 0.4 }, distribution: 'uniform', quantum: 1 }],
  regime: { flops: { min: 0.01, max: 0.2 } },
};

/** Every trial of the campaign in `dir`, read from its store. */
export function trials(dir: string): TrialRecord[] {
  const reader = openCampaign(dir, { readonly: true });
  try {
    return reader.trials();
  } finally {
    reader.close();
  }
}

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `prunespace-${label}-`));
}

export function writeTinySpace(dir: string, patch: Record<string, unknown> = {}): string {
  const path = join(dir, 'tiny.json');
  writeFileSync(path, JSON.stringify({ ...TINY_SPACE, ...patch }, null, 2));
  return path;
}

export function tinySettings(syntheticImages = 64, epochs = 1): TrainSettings {
  return {
    data: { name: 'synthetic', samples: syntheticImages, augment: false },
    epochs,
    batchSize: 32,
    lr: 0.05,
    momentum: 0.9,
    nesterov: false,
    weightDecay: 5e-4,
    warmupEpochs: 0,
    labelSmoothing: 0,
    backend: 'wasm',
  };
}

/** CLI flags matching tinySettings. */
export function tinyFlags(syntheticImages = 64, epochs = 1): string[] {
  return ['--data', 'synthetic', '--synthetic-samples', String(syntheticImages), '--epochs', String(epochs), '--batch', '32',
    '--lr', '0.05', '--no-augment', '--backend', 'wasm'];
}

export function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function cliProcess(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

export async function waitFor<T>(probe: () => T | undefined | false, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let v: T | undefined | false;
    try {
      v = probe();
    } catch {
      v = undefined; // the store may not exist yet
    }
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for the campaign');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
