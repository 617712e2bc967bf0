// Builds each fixture app in fixtures/ with its real tool, in sequence, into SITE_DIR/<fixture>/
// (served by calling-server for bundlers.test.mjs). The package comes from node_modules/
// trtc-calling-wasm, unpacked there by run.sh from `npm pack` of pkg/, as an app installs it.
// Each tool gets only the configuration that tool needs for any package: an entry and an output.
//
// Usage: node build.mjs SITE_DIR [FIXTURE...]   (webpack 4 runs in a child process, because on
// Node 17+ it needs NODE_OPTIONS=--openssl-legacy-provider, as every webpack 4 build does).

import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const fixtures = path.join(here, 'fixtures');
const installed = path.join(here, 'node_modules', 'trtc-calling-wasm');
const [siteArg, ...only] = process.argv.slice(2);
const site = path.resolve(siteArg);

const page = readFileSync(path.join(fixtures, 'shared', 'page.html'), 'utf8');
// A page for a bundled fixture: the bundle as a classic script, or as a module.
const pageWith = (script) => page.replace('<!-- SCRIPTS -->', script);

function webpackBuild(webpack, name, extra = {}) {
  return new Promise((resolve, reject) => {
    webpack(
      {
        mode: 'production',
        context: path.join(fixtures, name),
        entry: './main.js',
        output: { path: path.join(site, name), filename: 'main.js' },
        performance: { hints: false },
        ...extra,
      },
      (err, stats) => {
        if (err) return reject(err);
        if (stats.hasErrors()) return reject(new Error(stats.toString({ all: false, errors: true })));
        resolve();
      },
    );
  });
}

const builders = {
  // webpack 4 (vue-cli 4's bundler) takes the package's `browser` field: the legacy entry.
  async webpack4() {
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), site, 'webpack4-child'], {
      stdio: 'inherit',
      env: { ...process.env, NODE_OPTIONS: '--openssl-legacy-provider' },
    });
    if (child.status !== 0) throw new Error(`webpack 4 build failed (exit ${child.status})`);
  },
  async 'webpack4-child'() {
    await webpackBuild(require('webpack4'), 'webpack4');
    writeFileSync(path.join(site, 'webpack4', 'index.html'), pageWith('<script src="main.js"></script>'));
  },
  // webpack 5 takes `exports`: `import` gets the modern entry (top-level await, the .wasm as an
  // asset through `new URL(..., import.meta.url)`); `require` gets index.cjs.
  async webpack5() {
    await webpackBuild(require('webpack'), 'webpack5');
    writeFileSync(path.join(site, 'webpack5', 'index.html'), pageWith('<script src="main.js"></script>'));
  },
  async 'webpack5-require'() {
    await webpackBuild(require('webpack'), 'webpack5-require');
    writeFileSync(path.join(site, 'webpack5-require', 'index.html'), pageWith('<script src="main.js"></script>'));
  },
  async vite() {
    const { build } = await import('vite');
    await build({
      root: path.join(fixtures, 'vite'),
      base: './',
      logLevel: 'warn',
      configFile: false,
      build: { outDir: path.join(site, 'vite'), emptyOutDir: true },
    });
  },
  // esbuild leaves `new URL('./x.wasm', import.meta.url)` alone, so the .wasm is copied next to
  // the bundle, as with any wasm package under esbuild.
  async esbuild() {
    const esbuild = await import('esbuild');
    const out = path.join(site, 'esbuild');
    await esbuild.build({
      entryPoints: [path.join(fixtures, 'esbuild', 'main.js')],
      bundle: true,
      format: 'esm',
      outfile: path.join(out, 'main.js'),
      logLevel: 'warning',
    });
    copyFileSync(path.join(installed, 'trtc_calling_wasm_bg.wasm'), path.join(out, 'trtc_calling_wasm_bg.wasm'));
    writeFileSync(path.join(out, 'index.html'), pageWith('<script type="module" src="main.js"></script>'));
  },
  // No tool: the UMD file from the package beside the page, and the app as a classic script.
  async umd() {
    const out = path.join(site, 'umd');
    mkdirSync(out, { recursive: true });
    copyFileSync(path.join(fixtures, 'umd', 'index.html'), path.join(out, 'index.html'));
    copyFileSync(path.join(installed, 'trtc-calling-wasm.umd.js'), path.join(out, 'trtc-calling-wasm.umd.js'));
    copyFileSync(path.join(fixtures, 'shared', 'app.js'), path.join(out, 'app.js'));
  },
  // No tool: `<script type="module">` importing /pkg/index.js as calling-server serves it.
  async module() {
    const out = path.join(site, 'module');
    mkdirSync(out, { recursive: true });
    copyFileSync(path.join(fixtures, 'module', 'index.html'), path.join(out, 'index.html'));
    copyFileSync(path.join(fixtures, 'shared', 'app.js'), path.join(out, 'app.js'));
  },
  async typescript() {
    const out = path.join(site, 'typescript');
    const tsc = require.resolve('typescript/bin/tsc');
    const child = spawnSync(
      process.execPath,
      [tsc, '--strict', '-p', path.join(fixtures, 'typescript', 'tsconfig.json'), '--outDir', out],
      { stdio: 'inherit' },
    );
    if (child.status !== 0) throw new Error(`tsc --strict failed (exit ${child.status})`);
    copyFileSync(path.join(fixtures, 'typescript', 'index.html'), path.join(out, 'index.html'));
    copyFileSync(path.join(fixtures, 'shared', 'app.js'), path.join(out, 'app.js'));
  },
};

const names = only.length ? only : Object.keys(builders).filter((n) => !n.endsWith('-child'));
for (const name of names) {
  const started = Date.now();
  if (!name.endsWith('-child')) rmSync(path.join(site, name), { recursive: true, force: true });
  await builders[name]();
  if (!name.endsWith('-child')) console.log(`built ${name} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
