/** ONNX Runtime is loaded only by the commands that time on it, so a host where it cannot load still runs every other command. */
import { UserError } from '../util/errors.js';

/** Loads onnxruntime-node, or fails with one line naming what needed it. */
export async function requireOrt(what: string): Promise<void> {
  try {
    await import('onnxruntime-node');
  } catch (e) {
    throw new UserError(`${what} needs onnxruntime-node, which cannot be loaded (${(e as Error).message.split('\n')[0]})`);
  }
}
