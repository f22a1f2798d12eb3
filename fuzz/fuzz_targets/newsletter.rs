//! `newsletter.yaml`: any bytes through the YAML reader and the settings decoder.
#![no_main]

use letterpress::decode::Decoder;
use letterpress::model::newsletter;
use letterpress::yaml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new("newsletter.yaml");
    match yaml::read(data) {
        Ok(document) => {
            decoder.set_comments(document.comments);
            let _ = newsletter::decode(&mut decoder, &document.root);
        }
        Err(error) => decoder.read_error(error),
    }
    for diagnostic in decoder.into_diagnostics().iter() {
        let _ = diagnostic.to_string();
    }
});
