//! What a relay sends back: any bytes, read reply after reply as the SMTP client reads them.
//! Each read is a reply with a code from 200 to 599, or an error; never a panic, and never a
//! reply made of more bytes than were sent.
#![no_main]

use letterpress::delivery::smtp::read_reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut stream = tokio::io::BufReader::new(data);
        while let Ok(reply) = read_reply(&mut stream).await {
            assert!((200..600).contains(&reply.code), "{}", reply.code);
            assert!(reply.text.len() <= data.len() * 3, "more text than input");
        }
    });
});
