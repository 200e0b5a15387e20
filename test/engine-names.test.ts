/**
 * One list of engine names: every name is accepted, and resolved the same way, by every entry point (each CLI
 * command's --backend, campaign files' launch.backend, the coordinator's choice, queue workers' check, the engine
 * selector), and a campaign file can ask for torch.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Command, type Option } from 'commander';
import { resolveCampaignBackend } from '../src/campaign/backend.js';
import { checkCampaign } from '../src/campaign/queue-worker.js';
import { loadCampaignFile } from '../src/cli/campaign-file.js';
import { registerCommands } from '../src/cli/commands/index.js';
import { ENGINE_CHOICES, ENGINE_NAMES, isEngineName } from '../src/training/engine-names.js';
import { selectEngine } from '../src/training/engines/select.js';
import { torchAddonBuilt } from '../src/training/engines/torch.js';
import { isUserError } from '../src/util/errors.js';
import { cli, tempDir, trials, writeTinySpace } from './campaign-helpers.js';

function commandsWithBackend(): [string, Option][] {
  const program = new Command();
  registerCommands(program);
  const out: [string, Option][] = [];
  const walk = (c: Command, path: string) => {
    const o = c.options.find((x) => x.long === '--backend');
    if (o) out.push([path, o]);
    for (const sub of c.commands) walk(sub, `${path} ${sub.name()}`.trim());
  };
  walk(program, '');
  return out;
}

test('every command with --backend offers exactly the engine list, and parses each name', () => {
  const found = commandsWithBackend();
  // train, search, distill, prune and bench-infer at least.
  assert.ok(found.length >= 5, found.map(([p]) => p).join(', '));
  for (const [path, option] of found) {
    assert.deepEqual(option.argChoices, [...ENGINE_CHOICES], path);
    for (const name of ENGINE_CHOICES) assert.equal(option.parseArg ? option.parseArg(name, undefined) : name, name, `${path} --backend ${name}`);
    assert.throws(() => option.parseArg!('tpu', undefined), /Allowed choices are auto, torch, tensorflow, wasm, cpu/, path);
  }
});

test('campaign files accept every engine name in launch.backend, torch included', () => {
  const dir = tempDir('engine-names');
  writeTinySpace(dir);
  for (const backend of ENGINE_CHOICES) {
    const path = join(dir, `${backend}.json`);
    writeFileSync(path, JSON.stringify({ name: 'tiny', space: 'tiny.json', samples: 1, train: { data: 'synthetic', epochs: 1 }, launch: { backend } }));
    assert.equal(loadCampaignFile(path).file.launch.backend, backend);
  }
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ name: 'tiny', space: 'tiny.json', samples: 1, train: { data: 'synthetic', epochs: 1 }, launch: { backend: 'tpu' } }));
  assert.throws(() => loadCampaignFile(bad), (e: Error) => isUserError(e) && /launch\.backend: .*"auto"\|"torch"\|"tensorflow"\|"wasm"\|"cpu"/.test(e.message));
});

test('the coordinator resolves every name to an engine of the list, and queue workers know every engine', () => {
  for (const name of ENGINE_CHOICES) {
    let backend: string;
    try {
      backend = resolveCampaignBackend(name).backend;
    } catch (e) {
      // Only torch may be refused, and only where its addon is not built.
      assert.ok(name === 'torch' && !torchAddonBuilt() && isUserError(e), `${name}: ${(e as Error).message}`);
      continue;
    }
    assert.ok(isEngineName(backend), `${name} -> ${backend}`);
    if (name !== 'auto') assert.equal(backend, name);
  }
  for (const backend of ENGINE_NAMES) {
    const why = checkCampaign({ id: 'c', name: 'c', dataset: 'synthetic', backend, updatedAt: '' });
    assert.doesNotMatch(why ?? '', /does not know/, backend);
  }
  assert.match(checkCampaign({ id: 'c', name: 'c', dataset: 'synthetic', backend: 'tpu', updatedAt: '' }) ?? '', /engine 'tpu', which this prunespace does not know/);
});

test('the engine selector starts every name or says why in one line', async () => {
  for (const name of ENGINE_CHOICES) {
    try {
      const { engine, reason } = await selectEngine(name);
      assert.ok(isEngineName(engine.name), `${name} -> ${engine.name}`);
      if (name !== 'auto') assert.equal(engine.name, name);
      assert.ok(!reason.includes('\n'));
    } catch (e) {
      // A native engine this host lacks: a user error naming it, never 'unknown'.
      assert.ok(isUserError(e) && (name === 'torch' || name === 'tensorflow'), `${name}: ${(e as Error).message}`);
      assert.doesNotMatch((e as Error).message, /unknown/);
    }
  }
});

test('a campaign file asking for torch trains its trials on torch', { skip: torchAddonBuilt() ? false : 'torch addon not built' }, () => {
  const dir = tempDir('engine-names-torch');
  writeTinySpace(dir);
  const path = join(dir, 'campaign.json');
  const train = { data: 'synthetic', syntheticSamples: 64, epochs: 1, batch: 32, lr: 0.05, augment: false };
  writeFileSync(path, JSON.stringify({ name: 'tiny', space: 'tiny.json', samples: 1, train, reference: { seeds: 0 }, launch: { backend: 'torch', workers: 1 } }));
  const out = join(dir, 'run');
  const r = cli(['search', '--config', path, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(readFileSync(join(out, 'campaign.json'), 'utf8')).launch.backend, 'torch');
  const done = trials(out);
  assert.ok(done.length >= 1);
  for (const t of done) assert.equal(t.backend, 'torch');
});
