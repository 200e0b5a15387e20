import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { compileSpace } from '../src/space/compile.js';
import { loadSpace, parseSpace, writeSpace } from '../src/space/load.js';
import { sampleSpace } from '../src/space/sampler.js';
import type { SpaceFileInput } from '../src/space/schema.js';
import { UserError } from '../src/util/errors.js';

const base: SpaceFileInput = {
  name: 'r20',
  network: { family: 'resnet20', input: '28x28x1', classes: 10 },
  samplers: [
    { select: { kinds: ['stage'] }, keep: { min: 0.25, max: 1 } },
    { select: { kinds: ['inner'] }, keep: { min: 0.1, max: 1 } },
  ],
  regime: { flops: { min: 0.45, max: 0.55 } },
};
const compiled = (over: Partial<SpaceFileInput> = {}) => compileSpace(parseSpace({ ...base, ...over }, 'test.json'));

test('every shipped space file loads and samples inside its regime', () => {
  for (const file of readdirSync('spaces').filter((f) => f.endsWith('.json'))) {
    const space = compileSpace(loadSpace(join('spaces', file)));
    const { configs } = sampleSpace(space, 20, 1);
    assert.equal(configs.length, 20, file);
    for (const c of configs) assert.ok(space.contains(c.widths), `${file}: ${c.widths}`);
  }
});

test('same space and seed give the same configurations; another seed differs', () => {
  const a = sampleSpace(compiled(), 50, 42).configs.map((c) => c.widths.join(','));
  const b = sampleSpace(compiled(), 50, 42).configs.map((c) => c.widths.join(','));
  const c = sampleSpace(compiled(), 50, 43).configs.map((c) => c.widths.join(','));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  // A longer draw with the same seed extends the shorter one: configurations do not depend on n.
  assert.deepEqual(sampleSpace(compiled(), 80, 42).configs.slice(0, 50).map((c) => c.widths.join(',')), a);
});

test('every sample respects the regime, the ranges, the quantum and the constraints, without duplicates', () => {
  const space = compiled({
    samplers: [{ select: {}, keep: { min: 0.2, max: 1 }, quantum: 4 }],
    regime: { flops: { min: 0.3, max: 0.6 }, params: { max: 0.5 }, flopsPerParam: { min: 100 } },
    constraints: [{ rule: 'non-decreasing', select: { kinds: ['stage'] } }],
  });
  const { configs, acceptanceRate } = sampleSpace(space, 300, 3);
  assert.ok(acceptanceRate > 0 && acceptanceRate <= 1);
  const keys = new Set(configs.map((c) => c.widths.join(',')));
  assert.equal(keys.size, configs.length);
  for (const { widths, complexity } of configs) {
    assert.ok(complexity.flops >= 0.3 * space.original.flops && complexity.flops <= 0.6 * space.original.flops);
    assert.ok(complexity.params <= 0.5 * space.original.params);
    assert.ok(complexity.flops / complexity.params >= 100);
    widths.forEach((w, g) => assert.ok(w % 4 === 0 || w === space.net.groups[g].base));
    assert.ok(widths[0] <= widths[1] && widths[1] <= widths[2], `stages not monotone: ${widths}`);
  }
});

test('log-uniform favours small widths compared with uniform', () => {
  const mean = (distribution: 'uniform' | 'log-uniform') => {
    const space = compiled({ samplers: [{ select: {}, keep: { min: 0.1, max: 1 }, distribution }], regime: { flops: { min: 0, max: 1 } } });
    const { configs } = sampleSpace(space, 400, 5);
    return configs.reduce((s, c) => s + c.widths[2], 0) / configs.length;
  };
  assert.ok(mean('log-uniform') < mean('uniform') - 5);
});

test('a regime the space cannot reach is an error naming the reachable range', () => {
  assert.throws(
    () => sampleSpace(compiled({ regime: { flops: { min: 0.01, max: 0.02 } } }), 5, 1),
    (e: unknown) => e instanceof UserError && /regime\.flops asks .* reaches only .*%/.test(e.message),
  );
  assert.throws(
    () => sampleSpace(compiled({ regime: { flops: { min: 0.4, max: 0.6 }, flopsPerParam: { min: 1e6 } } }), 5, 1, { maxAttempts: 2000 }),
    (e: unknown) => e instanceof UserError && /no configuration satisfied .* 2000 draws/.test(e.message),
  );
});

test('a small space runs out of distinct configurations and says so', () => {
  const space = compiled({
    samplers: [{ select: { kinds: ['stage'] }, width: { min: 8, max: 16 }, quantum: 8 }],
    regime: { flops: { min: 0, max: 1 } },
  });
  const result = sampleSpace(space, 50, 1, { maxAttempts: 5000 });
  // 2 choices for stage1 (8, 16), stage2 (8, 16) and stage3 (8, 16): 8 configurations.
  assert.equal(result.configs.length, 8);
  assert.match(result.shortfall!, /distinct/);
});

test('malformed space files give one line naming the file and the field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-space-'));
  const cases: [string, string, RegExp][] = [
    ['notjson.json', '{"name": ', /notjson\.json: not valid JSON/],
    ['missing.json', JSON.stringify({ ...base, regime: undefined }), /missing\.json: regime: missing/],
    ['type.json', JSON.stringify({ ...base, samplers: [{ keep: { min: '0.1', max: 1 } }] }), /samplers\.0\.keep\.min: expected number/],
    ['net.json', JSON.stringify({ ...base, network: { family: 'resnet21' } }), /network: unknown network 'resnet21'/],
    ['both.json', JSON.stringify({ ...base, samplers: [{ keep: { min: 0.1, max: 1 }, width: { min: 1, max: 4 } }] }), /exactly one of keep or width/],
    ['extra.json', JSON.stringify({ ...base, regime: { flops: { min: 0.4 }, flopz: 1 } }), /regime: Unrecognized key/],
  ];
  for (const [name, text, pattern] of cases) {
    writeFileSync(join(dir, name), text);
    assert.throws(() => loadSpace(join(dir, name)), (e: unknown) => e instanceof UserError && pattern.test(e.message) && !e.message.includes('\n'), name);
  }
  assert.throws(() => loadSpace(join(dir, 'absent.json')), /does not exist/);
});

test('writeSpace refuses to replace a file and writes loadable JSON', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-write-'));
  const path = join(dir, 'child.json');
  writeSpace(path, { ...base, name: 'child', parent: '../r20.json' });
  assert.equal(loadSpace(path).file.parent, '../r20.json');
  assert.throws(() => writeSpace(path, base), /already exists/);
  assert.equal(loadSpace(path).file.name, 'child');
});
