//! The server's decoding of a client's text frame: any text either decodes to a message that
//! survives a round trip through its JSON, or is refused as malformed (never a panic).

#![no_main]

use calling_protocol::ClientMessage;
use calling_server::socket::{decode, Malformed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Text frames are UTF-8 (the WebSocket layer refuses anything else).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match decode(text) {
        Ok(msg) => {
            if msg == ClientMessage::Unknown {
                return;
            }
            let json = serde_json::to_string(&msg).expect("a decoded message serializes");
            assert_eq!(decode(&json), Ok(msg), "round trip of {text:?}");
        }
        Err(Malformed { message, .. }) => assert!(message.starts_with("malformed message")),
    }
});
