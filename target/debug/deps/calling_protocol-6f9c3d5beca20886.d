/work/main/target/debug/deps/calling_protocol-6f9c3d5beca20886.d: crates/protocol/src/lib.rs

/work/main/target/debug/deps/libcalling_protocol-6f9c3d5beca20886.rmeta: crates/protocol/src/lib.rs

crates/protocol/src/lib.rs:
