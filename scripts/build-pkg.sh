#!/usr/bin/env bash
# Builds the npm package trtc-calling-wasm into pkg/: a release wasm-pack build (wasm-opt from
# npm's binaryen, see TOOLCHAIN.md) completed from pkg-template/, then prints its gzip -9 size.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .tools/node_modules/.bin/wasm-opt ] || scripts/setup.sh
# npm's binaryen first: Debian's wasm-opt corrupts wasm-bindgen output.
export PATH="$PWD/.tools/node_modules/.bin:$PATH"

# -p: the workspace root builds only its native default-members otherwise.
wasm-pack build --release --target web --mode no-install --out-dir pkg --no-pack . -- -p trtc-calling-wasm

# wasm-bindgen names every import `__wbg_<name>_<16 hex digits>`, once in the wasm and once in
# the glue: some 130 names whose hashes gzip cannot compress (about 3.4 KB gzip). Drop the hash
# from both files (a number tells apart two imports of the same name); the few exported closure
# adapters, also hashed, become closure_invoke<N>.
WASM=pkg/trtc_calling_wasm_bg.wasm GLUE=pkg/trtc_calling_wasm.js TYPES=pkg/trtc_calling_wasm_bg.wasm.d.ts node --input-type=module -e '
import { readFileSync, writeFileSync } from "node:fs";
const { WASM, GLUE, TYPES } = process.env;
const wasm = readFileSync(WASM);
let glue = readFileSync(GLUE, "utf8");
let pos = 8; // after the magic number and version
const uleb = () => {
  let n = 0, shift = 0, byte;
  do { byte = wasm[pos++]; n += (byte & 0x7f) * 2 ** shift; shift += 7; } while (byte & 0x80);
  return n;
};
const encode = (n) => {
  const bytes = [];
  do { let b = n & 0x7f; n = Math.floor(n / 128); if (n) b |= 0x80; bytes.push(b); } while (n);
  return Buffer.from(bytes);
};
const name = () => { const n = uleb(); pos += n; return wasm.subarray(pos - n, pos); };
const out = [wasm.subarray(0, 8)];
const renames = new Map();
const exportRenames = new Map();
const invoker = /^wasm_bindgen__convert__closures_+invoke__h[0-9a-f]{16}(_[0-9]+)?$/;
while (pos < wasm.length) {
  const id = wasm[pos++];
  const size = uleb();
  const end = pos + size;
  if (id === 7) { // exports: the closure adapters carry a hash too
    const count = uleb();
    const body = [encode(count)];
    for (let i = 0; i < count; i++) {
      let field = name().toString("utf8");
      if (invoker.test(field)) {
        exportRenames.set(field, "closure_invoke" + exportRenames.size);
        field = exportRenames.get(field);
      }
      const fieldBytes = Buffer.from(field, "utf8");
      const desc = pos;
      pos++; // kind
      uleb(); // index
      body.push(encode(fieldBytes.length), fieldBytes, wasm.subarray(desc, pos));
    }
    if (pos !== end) throw new Error("export section misread");
    const section = Buffer.concat(body);
    out.push(Buffer.from([id]), encode(section.length), section);
    continue;
  }
  if (id !== 2) { // neither imports nor exports: copied as is
    out.push(Buffer.from([id]), encode(size), wasm.subarray(pos, end));
    pos = end;
    continue;
  }
  const count = uleb();
  const body = [encode(count)];
  for (let i = 0; i < count; i++) {
    const module = name();
    let field = name().toString("utf8");
    const hashed = /^(__wbg_.+)_[0-9a-f]{16}$/.exec(field);
    if (hashed) {
      let short = hashed[1];
      for (let k = 2; [...renames.values()].includes(short) || glue.includes(short + ":"); k++) {
        short = hashed[1] + k;
      }
      renames.set(field, short);
      field = short;
    }
    const fieldBytes = Buffer.from(field, "utf8");
    body.push(encode(module.length), module, encode(fieldBytes.length), fieldBytes);
    const desc = pos;
    const kind = wasm[pos++];
    if (kind === 0) uleb(); // function: type index
    else if (kind === 1) { pos++; if (wasm[pos++] & 1) uleb(); uleb(); } // table: reftype, limits
    else if (kind === 2) { if (wasm[pos++] & 1) uleb(); uleb(); } // memory: limits
    else if (kind === 3) pos += 2; // global: valtype, mutability
    else if (kind === 4) { pos++; uleb(); } // tag
    else throw new Error("unknown import kind " + kind);
    body.push(wasm.subarray(desc, pos));
  }
  if (pos !== end) throw new Error("import section misread");
  const section = Buffer.concat(body);
  out.push(Buffer.from([id]), encode(section.length), section);
}
for (const [from, to] of renames) {
  const uses = glue.split(from).length - 1;
  if (uses !== 1) throw new Error(from + " occurs " + uses + " times in the glue");
  glue = glue.replace(from, to);
}
// An exported name is used several times in the glue (and listed in the wasm typings).
const renameExports = (text) =>
  text.replace(new RegExp(invoker.source.slice(1, -1), "g"), (found) => {
    const to = exportRenames.get(found);
    if (!to) throw new Error("unknown export " + found);
    return to;
  });
writeFileSync(WASM, Buffer.concat(out));
writeFileSync(GLUE, renameExports(glue));
writeFileSync(TYPES, renameExports(readFileSync(TYPES, "utf8")));
'

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
# wasm-pack's own package.json and README are replaced by the template's.
rm -f pkg/package.json pkg/README.md pkg/.gitignore
cp pkg-template/index.js pkg-template/index.d.ts pkg-template/README.md pkg/
sed "s/\"version\": \"[^\"]*\"/\"version\": \"$version\"/" pkg-template/package.json > pkg/package.json

# Comments and indentation in the shipped JS are bytes on every page (wasm-bindgen copies each
# method's doc comment into the glue); the typings keep the documentation. Only whole-line
# comments (`/** ... */` blocks, `// ...` lines) and leading blanks go: no string in these
# files contains a comment, and none spans lines where leading blanks would matter.
find pkg -name '*.js' -print0 | xargs -0 node --input-type=module -e '
import { readFileSync, writeFileSync } from "node:fs";
for (const file of process.argv.slice(1)) {
  const js = readFileSync(file, "utf8")
    .replace(/^[ \t]*\/\*[\s\S]*?\*\/[ \t]*\n/gm, "")
    .replace(/^[ \t]*\/\/.*\n/gm, "")
    .replace(/^[ \t]+/gm, "");
  writeFileSync(file, js);
}
'

# The JS that Rust code imports (`#[wasm_bindgen(module = ...)]`) ships under snippets/.
mapfile -t snippets < <(find pkg/snippets -name '*.js' 2> /dev/null | sort)
shipped=(pkg/trtc_calling_wasm_bg.wasm pkg/trtc_calling_wasm.js pkg/index.js "${snippets[@]}")
total=0
for f in "${shipped[@]}"; do
  n=$(gzip -9 -c "$f" | wc -c)
  total=$((total + n))
  printf '%8d bytes gzip -9  %s (%d raw)\n' "$n" "$f" "$(wc -c < "$f")"
done
printf '%8d bytes gzip -9  total shipped wasm + JS\n' "$total"

# The package as npm ships it: pack it, install the tarball into a fresh folder, and check that
# `import TRTCCalling from 'trtc-calling-wasm'` resolves (exports map, types, every shipped file).
check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
(cd pkg && npm pack --silent --pack-destination "$check" > /dev/null)
(
  cd "$check"
  echo '{"private": true, "type": "module"}' > package.json
  npm install --silent --offline --no-audit --no-fund ./trtc-calling-wasm-*.tgz
  node --input-type=module -e "
    import { existsSync, readFileSync } from 'node:fs';
    import { fileURLToPath } from 'node:url';
    const entry = fileURLToPath(import.meta.resolve('trtc-calling-wasm'));
    const dir = entry.replace(/index\.js\$/, '');
    const pkg = JSON.parse(readFileSync(dir + 'package.json', 'utf8'));
    for (const f of [...pkg.files, pkg.types]) {
      if (!existsSync(dir + f)) throw new Error('missing from the package: ' + f);
    }
    if (!readFileSync(entry, 'utf8').includes('export default TRTCCalling')) throw new Error('no default export');
    console.log('npm package ok: import resolves to', entry.slice(entry.indexOf('node_modules')));
  "
)
