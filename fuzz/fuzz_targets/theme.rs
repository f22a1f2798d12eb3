//! A theme's `theme.yaml`, loaded the way `Theme::load` reads it from a workspace, and every
//! theme that loads used to render a small issue.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use letterpress::decode::Decoder;
use letterpress::model::issue::{self, Issue, IssueId};
use letterpress::model::newsletter::{self, Newsletter, ThemeName};
use letterpress::render;
use letterpress::theme::Theme;
use letterpress::yaml;
use libfuzzer_sys::fuzz_target;

/// A workspace of our own, one per fuzzing process, with a theme folder rewritten per input.
/// In memory (/dev/shm) where there is one: on a busy disk, writing a file could stall past
/// the 1 s an input may take, which libFuzzer reports as a hang of the code under test.
static ROOT: LazyLock<PathBuf> = LazyLock::new(|| {
    let shm = PathBuf::from("/dev/shm");
    let base = if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    };
    let root = base.join(format!("letterpress-fuzz-theme-{}", std::process::id()));
    std::fs::create_dir_all(root.join("templates/fuzz")).unwrap();
    std::fs::write(root.join("templates/fuzz/style.css"), "p { margin: 0 }\n").unwrap();
    root
});
static NEWSLETTER: LazyLock<Newsletter> = LazyLock::new(|| {
    let root = yaml::parse(include_str!("../../newsletter.yaml")).unwrap();
    newsletter::decode(&mut Decoder::new("newsletter.yaml"), &root).unwrap()
});
/// A one-article issue: rendering it is most of the cost of each input, so it is kept small.
static ISSUE: LazyLock<Issue> = LazyLock::new(|| {
    let root = yaml::parse(include_str!("../seeds/issue/comment.yaml")).unwrap();
    let id = IssueId::parse("2021-08-23").unwrap();
    issue::decode(&mut Decoder::new("issue.yaml"), &root, id).unwrap()
});

fuzz_target!(|data: &[u8]| {
    std::fs::write(ROOT.join("templates/fuzz/theme.yaml"), data).unwrap();
    let name = ThemeName::parse("fuzz").unwrap();
    match Theme::load(&ROOT, &name) {
        Ok(theme) => {
            let _ = theme.texts.greeting_for(Some("Ada"));
            let _ = render::render(&NEWSLETTER, &ISSUE, &theme);
        }
        Err(diagnostics) => {
            for diagnostic in diagnostics.iter() {
                let _ = diagnostic.to_string();
            }
        }
    }
});
