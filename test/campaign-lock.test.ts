/** CampaignLock with real processes: of several that find the same stale lock at once exactly one takes it over. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CampaignLock } from '../src/campaign/lock.js';
import { ROOT, tempDir } from './campaign-helpers.js';

const FIXTURE = join(ROOT, 'test', 'campaign-lock-fixture.ts');

/** The pid of a node process that has exited: a lock left by a coordinator killed with -9. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

function contend(dir: string, start: number, holdMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, dir, String(start), String(holdMs)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 || code === 3 ? resolve(out.trim()) : reject(new Error(`contender exited ${code}: ${err}`))));
  });
}

test('several processes finding one stale lock at the same moment: exactly one takes it, the others are refused', async () => {
  const contenders = 6;
  for (let round = 0; round < 4; round++) {
    const dir = tempDir('lock-race');
    writeFileSync(join(dir, 'coordinator.lock'), String(deadPid()));
    // Far enough ahead that every contender has started (tsx startup on a loaded machine) and spins to the same moment.
    const start = Date.now() + 4000;
    const outs = await Promise.all(Array.from({ length: contenders }, () => contend(dir, start, 1500)));
    const held = outs.filter((o) => o === 'held');
    assert.equal(held.length, 1, `round ${round}: ${outs.join(' | ')}`);
    for (const o of outs.filter((x) => x !== 'held')) assert.match(o, /^refused: .* is being run by another prunespace process \(pid \d+\)/);
    // Nothing left behind but what the winner released.
    assert.deepEqual(readdirSync(dir), []);
  }
});

test('a live owner keeps its lock; a released or dead one is taken', () => {
  const dir = tempDir('lock');
  const a = CampaignLock.acquire(dir);
  assert.ok(existsSync(join(dir, 'coordinator.lock')));
  a.release();
  assert.ok(!existsSync(join(dir, 'coordinator.lock')));
  writeFileSync(join(dir, 'coordinator.lock'), 'garbage');
  const b = CampaignLock.acquire(dir); // an unreadable pid counts as a dead owner
  b.release();
  writeFileSync(join(dir, 'coordinator.lock'), String(process.ppid));
  if (existsSync(`/proc/${process.ppid}/cmdline`)) {
    // The test runner is a live node process: its lock holds.
    assert.throws(() => CampaignLock.acquire(dir), /being run by another prunespace process/);
  }
  assert.deepEqual(readdirSync(dir).sort(), ['coordinator.lock']);
});
