/work/main/target/debug/deps/calling_server-71b4372c31012ff6.d: crates/server/src/lib.rs

/work/main/target/debug/deps/libcalling_server-71b4372c31012ff6.rmeta: crates/server/src/lib.rs

crates/server/src/lib.rs:
