//! trtc-calling-wasm: the browser glue around `calling-core`.
