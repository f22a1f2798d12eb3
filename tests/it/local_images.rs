//! Images kept in the workspace: checked, measured, published under a name carrying their
//! hash, served by `serve` and copied by `render --site`.

use sha2::{Digest, Sha256};

use crate::support::{SECRET, SMALL_ISSUE, TestWorkspace, get, get_bytes, png};

const ISSUE: &str = "2021-08-30";
const ISSUE_FILE: &str = "issues/2021-08-30.yaml";
const SITE: &str = "https://weekly.example.com";

/// The small issue with an image under its one article, given as `image_yaml` (indented
/// for the article's fields).
fn issue_with_image(image_yaml: &str) -> String {
    format!("{SMALL_ISSUE}        image:\n{image_yaml}")
}

/// The name the picture is published under: its stem, the first 8 hex of its SHA-256.
fn published(stem: &str, bytes: &[u8]) -> String {
    let hash: String = Sha256::digest(bytes)[..4]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{stem}-{hash}.png")
}

fn workspace_with_chart() -> (TestWorkspace, Vec<u8>) {
    let workspace = TestWorkspace::example();
    let chart = png(200, 100, [30, 90, 200]);
    workspace.write_bytes("images/chart.png", &chart);
    workspace.write(
        ISSUE_FILE,
        &issue_with_image("          src: images/chart.png\n          alt: A blue chart\n"),
    );
    (workspace, chart)
}

#[test]
fn a_local_image_is_measured_and_linked_under_its_hash_from_email_text_and_feed() {
    let (workspace, chart) = workspace_with_chart();
    let run = workspace.run(&["check", ISSUE]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        !run.stdout.contains("image"),
        "no warning expected: {run:?}"
    );

    let run = workspace.run(&["render", ISSUE]);
    assert_eq!(run.status, 0, "{run:?}");
    let html = workspace.read(&format!("out/{ISSUE}/email.html"));
    let url = format!("{SITE}/images/{}", published("chart", &chart));
    let tag = html
        .split("<img")
        .find(|tag| tag.contains(&url))
        .unwrap_or_else(|| panic!("no <img> pointing at {url} in the email"));
    // The size comes from the file, as no width or height was given.
    assert!(
        tag.contains(r#"width="200""#) && tag.contains(r#"height="100""#),
        "{tag}"
    );
    assert!(
        !html.contains("images/chart.png"),
        "the workspace path leaked into the email"
    );
}

#[test]
fn a_given_width_alone_keeps_the_pictures_shape_and_a_stretching_size_is_warned_about() {
    let (workspace, _) = workspace_with_chart();
    workspace.write(
        ISSUE_FILE,
        &issue_with_image(
            "          src: images/chart.png\n          alt: A chart\n          width: 150\n",
        ),
    );
    let run = workspace.run(&["render", ISSUE]);
    assert_eq!(run.status, 0, "{run:?}");
    let html = workspace.read(&format!("out/{ISSUE}/email.html"));
    assert!(
        html.contains(r#"width="150" height="75""#),
        "the height follows the width"
    );

    workspace.write(
        ISSUE_FILE,
        &issue_with_image(
            "          src: images/chart.png\n          alt: A chart\n          width: 200\n          height: 200\n",
        ),
    );
    let run = workspace.run(&["check", ISSUE]);
    assert_eq!(run.status, 0, "a warning is not an error: {run:?}");
    assert!(
        run.stdout.contains(
            "issues/2021-08-30.yaml:20:11: warning: sections[0].articles[0].image.width: 200x200 stretches the picture, which is 200x100"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn check_refuses_images_that_are_missing_outside_fake_or_too_big_at_their_line() {
    let (workspace, _) = workspace_with_chart();
    workspace.write("images/fake.png", "<svg onload=alert(1)></svg>");
    workspace.write_bytes("images/huge.png", &png(600, 600, [1, 2, 3]));
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.png"), png(10, 10, [0, 0, 0])).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.png"),
        workspace.path("images/link.png"),
    )
    .unwrap();
    std::fs::create_dir_all(workspace.path("images/folder.png")).unwrap();
    let cases = [
        ("images/missing.png", "`images/missing.png`: file not found"),
        (
            "../secret.png",
            "`../secret.png` is not a path inside the workspace",
        ),
        (
            "images/link.png",
            "`images/link.png` leads outside the workspace (a link to `",
        ),
        (
            "images/fake.png",
            "`images/fake.png` is not a PNG, JPEG, GIF or WebP image (by its content)",
        ),
        ("images/huge.png", "over the 1 MiB limit"),
        (
            "images/folder.png",
            "`images/folder.png` is not a regular file",
        ),
    ];
    for (src, expected) in cases {
        workspace.write(
            ISSUE_FILE,
            &issue_with_image(&format!("          src: {src}\n          alt: A picture\n")),
        );
        let run = workspace.run(&["check", ISSUE]);
        assert_eq!(run.status, 1, "{src}: {run:?}");
        let line = "issues/2021-08-30.yaml:18:16: sections[0].articles[0].image.src: ";
        assert!(
            run.stdout
                .lines()
                .any(|printed| printed.starts_with(line) && printed.contains(expected)),
            "{src}: expected {line}…{expected}\n{}",
            run.stdout
        );
    }
}

#[test]
fn an_image_over_200_kib_is_a_warning() {
    let (workspace, _) = workspace_with_chart();
    // 300x300 RGB stored uncompressed is about 270 KiB.
    workspace.write_bytes("images/chart.png", &png(300, 300, [9, 9, 9]));
    let run = workspace.run(&["check", ISSUE]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout.contains("warning: sections[0].articles[0].image.src: `images/chart.png` is 264 KiB; readers download it with the email, so keep it under 200 KiB"),
        "{}",
        run.stdout
    );
}

#[test]
fn local_images_need_a_site_url() {
    let (workspace, _) = workspace_with_chart();
    workspace.replace(
        "newsletter.yaml",
        "site_url: \"https://weekly.example.com\"\n",
        "",
    );
    let run = workspace.run(&["check", ISSUE]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stdout.contains("site_url"), "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "the issue has images from the workspace, which are published under the site"
        ),
        "{}",
        run.stdout
    );
}

/// Sends the issue to the outbox, so that it is in the archive.
fn send(workspace: &TestWorkspace) {
    let output = workspace
        .command()
        .env("LETTERPRESS_SECRET", SECRET)
        .env("LETTERPRESS_NOW", "2021-08-30T13:00:00Z")
        .args(["send", ISSUE, "--yes"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn serve_answers_the_published_name_with_long_caching_and_nothing_else_of_the_workspace() {
    let (workspace, chart) = workspace_with_chart();
    send(&workspace);
    let server = crate::support::ServeProcess::start(&workspace);
    let name = published("chart", &chart);
    let (status, headers, body) = get_bytes(&server.url(&format!("/images/{name}")));
    assert_eq!(status, 200);
    assert_eq!(body, chart);
    let header = |wanted: &str| {
        headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, value)| value.clone())
    };
    assert_eq!(header("content-type").as_deref(), Some("image/png"));
    assert_eq!(
        header("cache-control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    // The archive page and feed show it.
    let page = get(&server.url(&format!("/issues/{ISSUE}/"))).body;
    assert!(page.contains(&format!("{SITE}/images/{name}")), "{page}");
    let feed = get(&server.url("/feed.xml")).body;
    assert!(feed.contains(&format!("{SITE}/images/{name}")), "{feed}");

    for path in [
        "/images/chart.png".to_string(),
        "/images/newsletter.yaml".to_string(),
        "/images/..%2Fnewsletter.yaml".to_string(),
        "/images/chart-00000000.png".to_string(),
        format!("/images/{}", name.replace(".png", ".gif")),
    ] {
        assert_eq!(get(&server.url(&path)).status, 404, "{path}");
    }

    // The picture saved over (next week's chart): the emails that went out still show the
    // one they were sent with, and so does the archive; the new one is served for the issue
    // file as it is now (a test send of it).
    let changed = png(200, 100, [200, 30, 30]);
    workspace.write_bytes("images/chart.png", &changed);
    let new_name = published("chart", &changed);
    let (status, _, body) = get_bytes(&server.url(&format!("/images/{name}")));
    assert_eq!((status, body == chart), (200, true));
    let (status, _, body) = get_bytes(&server.url(&format!("/images/{new_name}")));
    assert_eq!((status, body == changed), (200, true));
    let page = get(&server.url(&format!("/issues/{ISSUE}/"))).body;
    assert!(page.contains(&name), "{page}");
    assert!(!page.contains(&new_name), "{page}");
    let kept = workspace.path(&format!(".letterpress/images/{name}"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Deleted from the workspace: still there for the emails sent.
    std::fs::remove_file(workspace.path("images/chart.png")).unwrap();
    assert_eq!(get_bytes(&server.url(&format!("/images/{name}"))).0, 200);
    let run = workspace.run(&["render", "--site", "public"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        std::fs::read(workspace.path(&format!("public/images/{name}"))).unwrap(),
        chart
    );
}

#[test]
fn serve_answers_the_images_of_a_draft_too_so_its_test_send_shows_them() {
    let (workspace, chart) = workspace_with_chart();
    workspace.replace(ISSUE_FILE, "status: ready", "status: draft");
    let server = crate::support::ServeProcess::start(&workspace);
    let (status, _, body) =
        get_bytes(&server.url(&format!("/images/{}", published("chart", &chart))));
    assert_eq!((status, body == chart), (200, true));
}

#[test]
fn render_site_copies_the_images_the_archive_shows() {
    let (workspace, chart) = workspace_with_chart();
    send(&workspace);
    let run = workspace.run(&["render", "--site", "public"]);
    assert_eq!(run.status, 0, "{run:?}");
    let name = published("chart", &chart);
    assert!(
        run.stdout.contains(&format!("public/images/{name}")),
        "{}",
        run.stdout
    );
    assert_eq!(
        std::fs::read(workspace.path(&format!("public/images/{name}"))).unwrap(),
        chart
    );
    assert!(
        workspace
            .read("public/feed.xml")
            .contains(&format!("{SITE}/images/{name}"))
    );
}
