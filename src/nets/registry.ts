/** Network families by name, with their default inputs; the single entry point to build a NetSpec. */
import { UserError } from '../util/errors.js';
import { mobilenetV1, mobilenetV2 } from './mobilenet.js';
import { resnet50 } from './resnet50.js';
import { resnetCifar } from './resnet-cifar.js';
import type { NetRef, NetSpec, Shape } from './types.js';
import { vgg, VGG_FAMILIES } from './vgg.js';

interface Family {
  build: (ref: Required<NetRef>) => NetSpec;
  input: Shape;
  classes: number;
  description: string;
}

const CIFAR: Pick<Family, 'input' | 'classes'> = { input: [32, 32, 3], classes: 10 };
const IMAGENET: Pick<Family, 'input' | 'classes'> = { input: [224, 224, 3], classes: 1000 };

export const FAMILIES: Record<string, Family> = {
  ...Object.fromEntries(
    [20, 32, 56, 110].map((d) => [
      `resnet${d}`,
      { ...CIFAR, build: (r: Required<NetRef>) => resnetCifar(d, r), description: `CIFAR ResNet-${d}, basic blocks 16/32/64` },
    ]),
  ),
  ...Object.fromEntries(
    VGG_FAMILIES.map((f) => [f, { ...CIFAR, build: (r: Required<NetRef>) => vgg(f, r), description: `CIFAR ${f.toUpperCase()}` }]),
  ),
  'mobilenet-v1': { ...IMAGENET, build: (r) => mobilenetV1(r, false), description: 'MobileNetV1, paper layout' },
  'mobilenet-v1-cifar': { ...CIFAR, build: (r) => mobilenetV1(r, true), description: 'MobileNetV1 with CIFAR strides' },
  'mobilenet-v2': { ...IMAGENET, build: (r) => mobilenetV2(r, false), description: "MobileNetV2, torchvision's layout" },
  'mobilenet-v2-cifar': { ...CIFAR, build: (r) => mobilenetV2(r, true), description: 'MobileNetV2 with CIFAR strides' },
  resnet50: { ...IMAGENET, build: resnet50, description: "ResNet-50, torchvision's layout" },
};

export function familyNames(): string[] {
  return Object.keys(FAMILIES);
}

/** Fills a reference's defaults from its family and checks it. */
export function completeRef(ref: Partial<NetRef> & { family: string }): Required<NetRef> {
  const family = FAMILIES[ref.family];
  if (!family) throw new UserError(`unknown network '${ref.family}' (known: ${familyNames().join(', ')})`);
  const input = ref.input ?? family.input;
  if (input.length !== 3 || input.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new UserError(`input shape must be three positive integers HxWxC, got ${input.join('x')}`);
  }
  const classes = ref.classes ?? family.classes;
  if (!Number.isInteger(classes) || classes < 2) throw new UserError(`classes must be an integer >= 2, got ${classes}`);
  return { family: ref.family, input, classes, shortcut: ref.shortcut ?? 'zeropad' };
}

/** Builds the original network's description. */
export function buildNet(ref: Partial<NetRef> & { family: string }): NetSpec {
  const full = completeRef(ref);
  return FAMILIES[full.family].build(full);
}

/** Parses '32x32x3' into a Shape. */
export function parseShape(text: string): Shape {
  const parts = text.toLowerCase().split('x').map(Number);
  if (parts.length !== 3 || parts.some((p) => !Number.isInteger(p) || p < 1)) {
    throw new UserError(`--input must look like HxWxC (e.g. 32x32x3), got '${text}'`);
  }
  return parts as Shape;
}
