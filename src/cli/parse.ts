/** Flag value parsers shared by commands: each failure names the flag and what it expected. */
import { UserError } from '../util/errors.js';

export function intFlag(flag: string, opts: { min?: number } = {}) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < (opts.min ?? -Infinity)) {
      throw new UserError(`${flag} expects an integer${opts.min !== undefined ? ` >= ${opts.min}` : ''}, got '${value}'`);
    }
    return n;
  };
}

export function numberFlag(flag: string, opts: { min?: number; max?: number; above?: number } = {}) {
  return (value: string): number => {
    const n = Number(value);
    const bad =
      value.trim() === '' ||
      !Number.isFinite(n) ||
      (opts.min !== undefined && n < opts.min) ||
      (opts.max !== undefined && n > opts.max) ||
      (opts.above !== undefined && n <= opts.above);
    if (bad) {
      const range = [
        opts.above !== undefined ? `> ${opts.above}` : opts.min !== undefined ? `>= ${opts.min}` : '',
        opts.max !== undefined ? `<= ${opts.max}` : '',
      ].filter(Boolean);
      throw new UserError(`${flag} expects a number${range.length ? ' ' + range.join(' and ') : ''}, got '${value}'`);
    }
    return n;
  };
}

/** '16,8,32' into [16, 8, 32]. */
export function intListFlag(flag: string) {
  return (value: string): number[] => {
    const parts = value.split(',').map((s) => s.trim());
    if (parts.some((p) => !/^\d+$/.test(p))) {
      throw new UserError(`${flag} expects comma-separated positive integers, got '${value}'`);
    }
    return parts.map(Number);
  };
}
