// Finds libtorch: LIBTORCH (a libtorch directory, e.g. torch/ inside a CUDA PyTorch install) or Debian's libtorch-dev.
// `node native/libtorch.mjs include|libdir|libs` prints what binding.gyp needs; imported, it exports findLibtorch().
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** { include: [dirs], libdir, libs: ['-ltorch', ...], cuda: boolean, source } or { missing: reason }. */
export function findLibtorch(env = process.env) {
  const libsIn = (libdir) => {
    const have = (n) => existsSync(join(libdir, `lib${n}.so`));
    const libs = ['torch', 'torch_cpu', 'c10'];
    // A CUDA libtorch: link its CUDA parts so torch::cuda::is_available() sees the GPUs.
    const cuda = have('torch_cuda') && have('c10_cuda');
    if (cuda) libs.push('torch_cuda', 'c10_cuda');
    return { libs: libs.map((l) => `-l${l}`), cuda };
  };
  if (env.LIBTORCH) {
    const root = env.LIBTORCH;
    const include = [join(root, 'include'), join(root, 'include', 'torch', 'csrc', 'api', 'include')];
    const libdir = join(root, 'lib');
    if (!existsSync(join(include[1], 'torch', 'torch.h')) || !existsSync(join(libdir, 'libtorch.so'))) {
      return { missing: `LIBTORCH=${root} has no include/torch/csrc/api/include/torch/torch.h and lib/libtorch.so` };
    }
    return { include, libdir, ...libsIn(libdir), source: `LIBTORCH=${root}` };
  }
  const api = '/usr/include/torch/csrc/api/include';
  if (existsSync(join(api, 'torch', 'torch.h'))) {
    const libdir = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib']
      .concat(existsSync('/usr/lib') ? readdirSync('/usr/lib').filter((d) => d.endsWith('-linux-gnu')).map((d) => join('/usr/lib', d)) : [])
      .find((d) => existsSync(join(d, 'libtorch.so')));
    if (libdir) return { include: ['/usr/include', api], libdir, ...libsIn(libdir), source: 'Debian libtorch-dev' };
  }
  return { missing: 'no libtorch found (apt-get install libtorch-dev, or set LIBTORCH to a libtorch directory)' };
}

if (process.argv[1] && process.argv[1].endsWith('libtorch.mjs') && process.argv[2]) {
  const t = findLibtorch();
  if (t.missing) process.exit(1);
  const what = process.argv[2];
  console.log(what === 'include' ? t.include.join(' ') : what === 'libdir' ? t.libdir : t.libs.join(' '));
}
