//! The spam score of what readers get: SpamAssassin, with its local rules only (no network
//! tests, `spamassassin -L -t`), scores render's sample message at most 0.0, signed or not.

use crate::support::TestWorkspace;

/// The score SpamAssassin gives `message`, and its report of the rules that fired.
fn spam_score(message: &[u8]) -> (f64, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("spamassassin")
        .args(["-L", "-t"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = text
        .split_once("Content analysis details:")
        .map(|(_, report)| report.to_string())
        .unwrap_or_else(|| panic!("no report from spamassassin:\n{text}"));
    let score = report
        .trim_start()
        .strip_prefix('(')
        .and_then(|rest| rest.split_once(" points"))
        .and_then(|(score, _)| score.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no score in:\n{report}"));
    (score, report)
}

#[test]
fn spamassassin_scores_the_sample_at_most_zero_signed_or_not() {
    if !crate::support::have_tool("spamassassin", "spamassassin") {
        return;
    }
    let workspace = TestWorkspace::example();
    let render = workspace.run(&["render", "2021-08-23"]);
    assert_eq!(render.status, 0, "{render:?}");
    let unsigned = std::fs::read(workspace.path("out/2021-08-23/sample.eml")).unwrap();
    let (score, report) = spam_score(&unsigned);
    assert!(score <= 0.0, "{report}");
    assert!(
        unsigned.windows(12).any(|window| window == b"lp-preheader"),
        "the preheader is kept"
    );

    let settings = workspace.read("newsletter.yaml");
    workspace.write(
        "newsletter.yaml",
        &format!("{settings}dkim:\n  selector: lp2026\n"),
    );
    assert_eq!(workspace.run(&["dkim", "keygen"]).status, 0);
    assert_eq!(workspace.run(&["render", "2021-08-23"]).status, 0);
    let signed = std::fs::read(workspace.path("out/2021-08-23/sample.eml")).unwrap();
    assert!(signed.starts_with(b"DKIM-Signature: "));
    let (score, report) = spam_score(&signed);
    assert!(score <= 0.0, "{report}");
}
