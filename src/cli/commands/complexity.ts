/** `prunespace complexity`: exact FLOPs, params and activations of an original or pruned network. */
import type { Command } from 'commander';
import { complexity } from '../../complexity/count.js';
import { buildNet, familyNames, parseShape } from '../../nets/registry.js';
import { baseWidths, checkWidths, keepWidths } from '../../nets/resolve.js';
import { UserError } from '../../util/errors.js';
import { formatCount } from '../../util/format.js';
import { intFlag, intListFlag, numberFlag } from '../parse.js';

interface Options {
  net: string;
  input?: string;
  classes?: number;
  keep?: number;
  widths?: number[];
  shortcut?: 'zeropad' | 'projection';
  json?: boolean;
}

export function registerComplexity(program: Command): void {
  program
    .command('complexity')
    .description('Print FLOPs (multiply-accumulates), params and activations of a network at a width configuration')
    .requiredOption('--net <name>', `network family (${familyNames().join(', ')})`)
    .option('--input <HxWxC>', "input shape, e.g. 28x28x1 (default: the family's)")
    .option('--classes <k>', "number of classes (default: the family's)", intFlag('--classes', { min: 2 }))
    .option('--keep <ratio>', 'every prunable group keeps round-half-up(ratio x width) channels', numberFlag('--keep', { above: 0, max: 1 }))
    .option('--widths <w1,w2,...>', 'one kept-channel count per group, in group order', intListFlag('--widths'))
    .option('--shortcut <kind>', 'ResNet shortcut where widths change: zeropad (default) or projection')
    .option('--json', 'print JSON')
    .action((opts: Options) => {
      if (opts.keep !== undefined && opts.widths) throw new UserError('give either --keep or --widths, not both');
      if (opts.shortcut && opts.shortcut !== 'zeropad' && opts.shortcut !== 'projection') {
        throw new UserError(`--shortcut must be zeropad or projection, got '${opts.shortcut}'`);
      }
      const spec = buildNet({
        family: opts.net,
        input: opts.input ? parseShape(opts.input) : undefined,
        classes: opts.classes,
        shortcut: opts.shortcut,
      });
      const widths = opts.widths ?? (opts.keep !== undefined ? keepWidths(spec, opts.keep) : baseWidths(spec));
      checkWidths(spec, widths);
      const c = complexity(spec, widths);
      const original = complexity(spec, baseWidths(spec));
      const groups = spec.groups.map((g) => ({ ...g, width: widths[g.id] }));
      if (opts.json) {
        console.log(JSON.stringify({ net: spec.ref, ...c, original, flopsPerParam: c.flops / c.params, groups }, null, 2));
        return;
      }
      const share = (x: number, of: number) => `${((100 * x) / of).toFixed(1)}% of original`;
      console.log(`${spec.ref.family} on ${spec.ref.input.join('x')}, ${spec.ref.classes} classes`);
      console.log(`FLOPs        ${c.flops.toLocaleString('en-US')} (${formatCount(c.flops)}, ${share(c.flops, original.flops)})`);
      console.log(`params       ${c.params.toLocaleString('en-US')} (${formatCount(c.params)}, ${share(c.params, original.params)})`);
      console.log(`activations  ${c.activations.toLocaleString('en-US')} (${formatCount(c.activations)})`);
      console.log(`FLOPs/param  ${(c.flops / c.params).toFixed(1)}`);
      console.log(`groups (${groups.length}):`);
      for (const g of groups) console.log(`  ${String(g.id).padStart(3)}  ${g.name.padEnd(24)} ${g.kind.padEnd(9)} ${g.width}/${g.base}`);
    });
}
