// Legacy entry of trtc-calling-wasm, for toolchains that cannot take the modern entry (index.js,
// which uses top-level `await` and `import.meta.url`): webpack 4, Babel-based builds, Node's
// `require` and a classic `<script>`. scripts/build-pkg.sh bundles it with esbuild, as ES2019,
// into index.cjs (CommonJS), index.es2019.mjs (ES module) and trtc-calling-wasm.umd.js
// (`window.TRTCCalling`), each carrying the .wasm inside (deflate-compressed, base64).
//
// The WebAssembly starts loading when this module is evaluated; the app calls nothing. Until it
// is ready, the exported class stands in for wasm-bindgen's, so apps written for trtc-calling-js
// keep their order of things: `new TRTCCalling(options)` works at once, `on`, `off` and
// `setLogLevel` are replayed in order once it is ready, promise methods wait for it, and the
// status getters answer as a fresh instance does. Once ready, every call goes straight through.

import init, { TRTCCalling as Loaded } from 'trtc-calling-wasm:glue';
import WASM_BASE64 from 'trtc-calling-wasm:wasm';
import STATICS from 'trtc-calling-wasm:statics';

// The .wasm's bytes: DecompressionStream inflates them off the main thread's critical path.
function wasmBytes() {
  const deflated = Uint8Array.from(atob(WASM_BASE64), (c) => c.charCodeAt(0));
  const stream = new Blob([deflated]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Response(stream).arrayBuffer();
}

let loaded = false;
const ready = Promise.resolve()
  .then(wasmBytes)
  .then((bytes) => init({ module_or_path: bytes }))
  .then(
    () => {
      loaded = true;
    },
    (err) => {
      const error = new Error(`trtc-calling-wasm: the WebAssembly module could not be loaded: ${err && err.message}`);
      error.cause = err;
      throw error;
    },
  );
// Reported by every method that waits for the module, not as an unhandled rejection.
ready.catch(() => {});

// Methods without a result, replayed in order once the module is ready.
const REPLAYED = ['on', 'off', 'setLogLevel'];
// What a new instance answers before it could have logged in or called anyone.
const FRESH = {
  getCallStatus: () => 'idle',
  getCallType: () => 0,
  isInviter: () => false,
  isGroupCall: () => false,
  getInviteeList: () => [],
  getUserID: () => undefined,
};

// Each instance's wasm-bindgen object (once created) and the calls waiting for it.
const states = new WeakMap();

function stateOf(self) {
  const state = states.get(self);
  if (!state) throw new TypeError('TRTCCalling method called on an object that is not a TRTCCalling');
  return state;
}

export default class TRTCCalling {
  constructor(options) {
    const state = { instance: undefined, queue: [] };
    states.set(this, state);
    const create = () => {
      state.instance = new Loaded(options);
      for (const [name, args] of state.queue) state.instance[name](...args);
      state.queue = [];
      return state.instance;
    };
    if (loaded) {
      state.created = Promise.resolve(create());
    } else {
      state.created = ready.then(create);
      state.created.catch(() => {});
    }
  }

  static get EVENT() {
    return STATICS.EVENT;
  }

  static get CALL_TYPE() {
    return STATICS.CALL_TYPE;
  }
}

for (const name of Object.getOwnPropertyNames(Loaded.prototype)) {
  const { value } = Object.getOwnPropertyDescriptor(Loaded.prototype, name);
  if (name === 'constructor' || typeof value !== 'function') continue;
  Object.defineProperty(TRTCCalling.prototype, name, {
    value(...args) {
      const state = stateOf(this);
      // trtc-calling-js calls a listener with `this` = the instance when no context is given;
      // the instance the app holds is this one, not the wasm-bindgen object behind it.
      if ((name === 'on' || name === 'off') && args[2] === undefined) args = [args[0], args[1], this];
      if (state.instance) return state.instance[name](...args);
      if (REPLAYED.includes(name)) {
        state.queue.push([name, args]);
        return undefined;
      }
      if (Object.prototype.hasOwnProperty.call(FRESH, name)) return FRESH[name]();
      return state.created.then((instance) => instance[name](...args));
    },
    writable: true,
    configurable: true,
  });
}

// For CommonJS consumers that read `.default` (TypeScript without esModuleInterop) or a name.
Object.defineProperty(TRTCCalling, 'default', { value: TRTCCalling });
Object.defineProperty(TRTCCalling, 'TRTCCalling', { value: TRTCCalling });

export { TRTCCalling };
