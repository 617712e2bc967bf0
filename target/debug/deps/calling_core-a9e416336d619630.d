/work/main/target/debug/deps/calling_core-a9e416336d619630.d: crates/core/src/lib.rs crates/core/src/event.rs crates/core/src/io.rs crates/core/src/call.rs

/work/main/target/debug/deps/libcalling_core-a9e416336d619630.rmeta: crates/core/src/lib.rs crates/core/src/event.rs crates/core/src/io.rs crates/core/src/call.rs

crates/core/src/lib.rs:
crates/core/src/event.rs:
crates/core/src/io.rs:
crates/core/src/call.rs:
