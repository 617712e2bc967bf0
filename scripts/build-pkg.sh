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

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
# wasm-pack's own package.json and README are replaced by the template's.
rm -f pkg/package.json pkg/README.md pkg/.gitignore
cp pkg-template/index.js pkg-template/index.d.ts pkg-template/README.md pkg/
sed "s/\"version\": \"[^\"]*\"/\"version\": \"$version\"/" pkg-template/package.json > pkg/package.json

shipped=(pkg/trtc_calling_wasm_bg.wasm pkg/trtc_calling_wasm.js pkg/index.js)
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
