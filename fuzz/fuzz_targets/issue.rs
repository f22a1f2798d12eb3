//! An issue: any bytes through the YAML reader and the issue decoder, and every issue that
//! decodes through the email and web renderers.
#![no_main]

use std::sync::LazyLock;

use letterpress::decode::Decoder;
use letterpress::model::issue::{self, IssueId};
use letterpress::model::newsletter::{self, Newsletter};
use letterpress::render;
use letterpress::theme::Theme;
use letterpress::yaml;
use libfuzzer_sys::fuzz_target;

static NEWSLETTER: LazyLock<Newsletter> = LazyLock::new(|| {
    let root = yaml::parse(include_str!("../../newsletter.yaml")).unwrap();
    newsletter::decode(&mut Decoder::new("newsletter.yaml"), &root).unwrap()
});
static THEME: LazyLock<Theme> = LazyLock::new(Theme::builtin);

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new("issues/2021-08-23.yaml");
    let id = IssueId::parse("2021-08-23").unwrap();
    let issue = match yaml::read(data) {
        Ok(document) => {
            decoder.set_comments(document.comments);
            issue::decode(&mut decoder, &document.root, id)
        }
        Err(error) => {
            decoder.read_error(error);
            None
        }
    };
    for diagnostic in decoder.into_diagnostics().iter() {
        let _ = diagnostic.to_string();
    }
    if let Some(issue) = issue {
        let _ = render::render(&NEWSLETTER, &issue, &THEME);
        let _ = render::render_web_page(&NEWSLETTER, &issue, &THEME);
    }
});
