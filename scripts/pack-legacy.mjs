// Builds the package's legacy entries from pkg-template/legacy.js and wasm-pack's output in
// pkg/ (run by scripts/build-pkg.sh): index.cjs, index.es2019.mjs and trtc-calling-wasm.umd.js.
//
// esbuild bundles wasm-bindgen's glue unchanged, only lowered to ES2019 syntax for parsers
// such as webpack 4's; the .wasm goes inside as deflate + base64 (inflated in the browser with
// DecompressionStream). The EVENT and CALL_TYPE tables the legacy class must offer before the
// module is loaded are read here from the built module itself, so they have one source.
//
// Usage: node scripts/pack-legacy.mjs PKG_DIR TEMPLATE_DIR ESBUILD_MODULE_PATH

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { deflateSync } from 'node:zlib';

const [pkgDir, templateDir, esbuildPath] = process.argv.slice(2).map((p) => path.resolve(p));
const { build } = await import(pathToFileURL(esbuildPath).href);

const glue = path.join(pkgDir, 'trtc_calling_wasm.js');
const wasm = readFileSync(path.join(pkgDir, 'trtc_calling_wasm_bg.wasm'));

// The statics, from the module as built (its glue needs no browser to read them).
const { initSync, TRTCCalling } = await import(pathToFileURL(glue).href);
initSync({ module: wasm });
if (!TRTCCalling.EVENT.INVITED || TRTCCalling.CALL_TYPE.VIDEO_CALL !== 2) {
  throw new Error('unexpected EVENT / CALL_TYPE in the built module');
}

// The three names legacy.js imports, resolved to the built package.
const packageParts = {
  name: 'trtc-calling-wasm-parts',
  setup(b) {
    b.onResolve({ filter: /^trtc-calling-wasm:/ }, (args) => {
      const part = args.path.slice('trtc-calling-wasm:'.length);
      if (part === 'glue') return { path: glue };
      return { path: part, namespace: 'trtc-calling-wasm-parts' };
    });
    b.onLoad({ filter: /^wasm$/, namespace: 'trtc-calling-wasm-parts' }, () => ({
      contents: deflateSync(wasm, { level: 9 }),
      loader: 'base64',
    }));
    b.onLoad({ filter: /^statics$/, namespace: 'trtc-calling-wasm-parts' }, () => ({
      contents: `export default Object.freeze({ EVENT: Object.freeze(${JSON.stringify(TRTCCalling.EVENT)}), CALL_TYPE: Object.freeze(${JSON.stringify(TRTCCalling.CALL_TYPE)}) });`,
      loader: 'js',
    }));
  },
};

const common = {
  bundle: true,
  target: 'es2019',
  platform: 'neutral',
  plugins: [packageParts],
  logLevel: 'warning',
  // wasm-bindgen's default `init()` path reads import.meta.url; legacy.js always passes the
  // bytes, so that branch is never taken and esbuild may leave it empty.
  // wasm-bindgen's glue names the snippet module once per `#[wasm_bindgen(module)]` block, both
  // `import * as` the same module, so its repeated key in the imports object is harmless.
  logOverride: { 'empty-import-meta': 'silent', 'duplicate-object-key': 'silent' },
  legalComments: 'none',
  charset: 'utf8',
};
const legacy = path.join(templateDir, 'legacy.js');
const header = '// trtc-calling-wasm legacy entry: ES2019, the WebAssembly module inside. See README.md.\n';

await build({
  ...common,
  stdin: {
    contents: `module.exports = require(${JSON.stringify(legacy)}).default;`,
    resolveDir: templateDir,
    sourcefile: 'index.cjs',
  },
  format: 'cjs',
  banner: { js: header },
  outfile: path.join(pkgDir, 'index.cjs'),
});

await build({
  ...common,
  entryPoints: [legacy],
  format: 'esm',
  banner: { js: header },
  outfile: path.join(pkgDir, 'index.es2019.mjs'),
});

// UMD: AMD loaders, CommonJS, else a global `TRTCCalling` (a classic <script> sets window's).
await build({
  ...common,
  stdin: {
    contents: `module.exports = require(${JSON.stringify(legacy)}).default;`,
    resolveDir: templateDir,
    sourcefile: 'trtc-calling-wasm.umd.js',
  },
  format: 'iife',
  globalName: 'TRTCCalling',
  banner: {
    js:
      header +
      '(function (root, factory) {\n' +
      "  if (typeof define === 'function' && define.amd) define([], factory);\n" +
      "  else if (typeof module === 'object' && module.exports) module.exports = factory();\n" +
      '  else root.TRTCCalling = factory();\n' +
      "})(typeof self !== 'undefined' ? self : this, function () {",
  },
  footer: { js: 'return TRTCCalling;\n});' },
  outfile: path.join(pkgDir, 'trtc-calling-wasm.umd.js'),
});

// esbuild lowered the syntax to ES2019; import.meta must not survive either (e2e/bundlers
// parses each file as ES2019 too).
for (const file of ['index.cjs', 'index.es2019.mjs', 'trtc-calling-wasm.umd.js']) {
  const text = readFileSync(path.join(pkgDir, file), 'utf8');
  if (/\bimport\.meta\b/.test(text)) throw new Error(`${file} still mentions import.meta`);
}
