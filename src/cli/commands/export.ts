/** `prunespace export`: a saved model as an ONNX file (raw [0, 1] pixels in, logits out), recorded in prunespace.json. */
import type { Command } from 'commander';
import { exportOnnx, parseBatch } from '../../export/export.js';
import { OPSET_DEFAULT, OPSET_MAX, OPSET_MIN } from '../../export/onnx.js';
import { UserError } from '../../util/errors.js';
import { intFlag } from '../parse.js';

interface Options {
  onnx?: string;
  opset: number;
  batch: 'dynamic' | number;
  nchw?: boolean;
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('Export a saved model to ONNX: input "pixels" raw in [0, 1] (NHWC unless --nchw), normalisation folded in, output "logits"')
    .argument('<model-dir>', 'a model saved by prunespace')
    .option('--onnx <file>', 'the ONNX file to write')
    .option('--opset <n>', `ONNX opset (${OPSET_MIN}..${OPSET_MAX})`, intFlag('--opset', { min: 1 }), OPSET_DEFAULT)
    .option('--batch <n>', "batch dimension: 'dynamic' or a fixed size", parseBatch, 'dynamic' as const)
    .option('--nchw', 'take the input as NCHW instead of NHWC')
    .action(async (dir: string, opts: Options) => {
      if (!opts.onnx) throw new UserError('export needs --onnx FILE');
      const r = await exportOnnx({ dir, file: opts.onnx, opset: opts.opset, batch: opts.batch, layout: opts.nchw ? 'nchw' : 'nhwc' });
      console.log(`wrote ${r.file} (${(r.bytes / 1024).toFixed(1)} KiB, opset ${r.opset}, input pixels ${r.layout.toUpperCase()} in [0, 1], batch ${r.batch})`);
    });
}
