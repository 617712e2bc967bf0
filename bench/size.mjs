// Size of what the npm package makes a page download: raw and `gzip -9` bytes of each file.
// The files are those the call-setup page actually fetched from /pkg/ (when that list is
// given), else every .js and .wasm file of the package.
//
// node bench/size.mjs PKG_DIR [CALLSETUP_JSON] > size.json
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

const [pkgDir, callsetup] = process.argv.slice(2);
let names = null;
let source = 'every .js and .wasm file in the package';
if (callsetup && fs.existsSync(callsetup)) {
  const fetched = JSON.parse(fs.readFileSync(callsetup, 'utf8')).ours?.pkgFetched;
  if (Array.isArray(fetched) && fetched.length > 0) {
    names = fetched;
    source = 'files the page fetched from the package';
  }
}
if (!names) {
  const walk = (dir) => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name)).map((n) => `${e.name}/${n}`) : [e.name]);
  names = walk(pkgDir).filter((n) => /\.(m?js|wasm)$/.test(n)).sort();
}
const files = names.map((name) => {
  const file = path.join(pkgDir, name);
  const gzip = execFileSync('gzip', ['-9', '-c', file], { maxBuffer: 64 << 20 }).length;
  return { name, raw: fs.statSync(file).size, gzip9: gzip };
});
const total = files.reduce((t, f) => ({ raw: t.raw + f.raw, gzip9: t.gzip9 + f.gzip9 }), { raw: 0, gzip9: 0 });
process.stdout.write(JSON.stringify({ source, files, total }, null, 2) + '\n');
