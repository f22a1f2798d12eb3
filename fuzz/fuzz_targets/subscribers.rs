//! The subscriber list: any bytes through the streaming YAML reader and the list decoder.
#![no_main]

use letterpress::decode::Decoder;
use letterpress::model::subscriber;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new("subscribers.yaml");
    let _ = subscriber::decode_list_from(&mut decoder, data);
    for diagnostic in decoder.into_diagnostics().iter() {
        let _ = diagnostic.to_string();
    }
});
