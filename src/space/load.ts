/** Reads and validates space files; every problem becomes one line naming the file, the field and what was expected. */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import type { z } from 'zod';
import { buildNet, parseShape } from '../nets/registry.js';
import type { NetSpec } from '../nets/types.js';
import { UserError } from '../util/errors.js';
import { spaceSchema, type SpaceFile, type SpaceFileInput } from './schema.js';

export interface LoadedSpace {
  /** Where the space was read from ('' for one given in memory). */
  path: string;
  file: SpaceFile;
  net: NetSpec;
}

/** One zod issue as `field.path: what was wrong` (shared with campaign files). */
export function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
  const message = issue.message
    .replace(/^Invalid input: expected (.+), received undefined$/, 'missing (expected $1)')
    .replace(/^Invalid input: /, '');
  return `${path}: ${message}`;
}

/** Validates parsed JSON; `where` names the source in messages. */
export function parseSpace(json: unknown, where: string): LoadedSpace {
  const parsed = spaceSchema.safeParse(json);
  if (!parsed.success) {
    throw new UserError(`${where}: ${describeIssue(parsed.error.issues[0])}`);
  }
  const file = parsed.data;
  const { family, input, classes, shortcut } = file.network;
  let net: NetSpec;
  try {
    net = buildNet({ family, input: typeof input === 'string' ? parseShape(input) : input, classes, shortcut });
  } catch (e) {
    throw new UserError(`${where}: network: ${(e as Error).message}`);
  }
  return { path: where, file, net };
}

export function loadSpace(path: string): LoadedSpace {
  if (!existsSync(path)) throw new UserError(`space file ${path} does not exist`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return parseSpace(json, path);
}

/** Writes a space file atomically (temp file then rename), refusing to replace one unless asked. */
export function writeSpace(path: string, file: SpaceFileInput, opts: { force?: boolean } = {}): void {
  if (existsSync(path) && !opts.force) throw new UserError(`${path} already exists (use --force to replace it)`);
  parseSpace(file, path);
  mkdirSync(dirname(resolve(path)), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(file, null, 2) + '\n');
  renameSync(tmp, path);
}

/** A parent reference as written into a child space: relative to the child's folder. */
export function relativeParent(childPath: string, parentPath: string): string {
  return relative(dirname(resolve(childPath)), resolve(parentPath));
}
