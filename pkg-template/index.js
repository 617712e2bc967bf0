// Entry module of trtc-calling-wasm: initialises the WebAssembly module (top-level await), so
// the default export is the TRTCCalling class ready to use, as with trtc-calling-js.
import init, { TRTCCalling } from './trtc_calling_wasm.js';

await init({ module_or_path: new URL('./trtc_calling_wasm_bg.wasm', import.meta.url) });

// trtc-calling-js calls a listener with `this` = the instance when no context is given; the
// wasm side cannot see its own JS object, so the default context is supplied here.
const { on, off } = TRTCCalling.prototype;
Object.defineProperties(TRTCCalling.prototype, {
  on: {
    value(eventName, callback, context) {
      return on.call(this, eventName, callback, context === undefined ? this : context);
    },
    writable: true,
    configurable: true,
  },
  off: {
    value(eventName, callback, context) {
      return off.call(this, eventName, callback, context === undefined ? this : context);
    },
    writable: true,
    configurable: true,
  },
});

export { TRTCCalling };
export default TRTCCalling;
