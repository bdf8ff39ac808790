// process.dlopen of the addon at `path` (an unnamed file, see addon-file.ts), the way require()
// would load a .node file.
import type { NativeAddon } from '../native.js';

export function dlopenAddon(path: string): NativeAddon {
  const module = { exports: {} as NativeAddon };
  process.dlopen(module, path);
  return module.exports;
}
