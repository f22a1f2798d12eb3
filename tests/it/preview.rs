//! `letterpress preview`, the real binary, read over HTTP (the email byte for byte as
//! `render` writes it, the state after an edit and after a broken save, the Host check, the
//! policies, Ctrl-C) and driven in headless Chromium over the DevTools protocol: the new
//! subject shows within two seconds of saving, a broken issue shows the banner over the last
//! good render, and screenshots are left in `target/screenshots/preview-*.png`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{SECRET, SMALL_ISSUE, TestWorkspace, get, have_tool};

const ISSUE: &str = "issues/2021-08-23.yaml";
const SUBJECT: &str = "Global AI Weekly #1: Foundation models, Codex API and Tesla's Dojo";
const SUBJECT_LINE: &str =
    "subject: \"Global AI Weekly #1: Foundation models, Codex API and Tesla's Dojo\"";

/// `letterpress preview` running on a random loopback port; killed if a test fails first.
struct PreviewProcess {
    child: Child,
    /// Kept open: the preview would fail writing to a closed stdout.
    _stdout: BufReader<std::process::ChildStdout>,
    base: String,
}

impl PreviewProcess {
    fn start(workspace: &TestWorkspace, args: &[&str]) -> PreviewProcess {
        let log = std::fs::File::create(workspace.path("preview.log")).unwrap();
        let mut child = workspace
            .std_command()
            .env("LETTERPRESS_SECRET", SECRET)
            .arg("preview")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first_line = String::new();
        stdout.read_line(&mut first_line).unwrap();
        let base = first_line
            .split_whitespace()
            .find(|word| word.starts_with("http://127.0.0.1:"))
            .map(|url| url.trim_end_matches('/').to_string())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "preview did not start: {first_line:?}\n{}",
                    workspace.read("preview.log")
                )
            });
        PreviewProcess {
            child,
            _stdout: stdout,
            base,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn state(&self) -> Value {
        let reply = get(&self.url("/state.json"));
        assert_eq!(reply.status, 200, "{reply:?}");
        serde_json::from_str(&reply.body).unwrap()
    }

    /// Asks for the state until `done` holds, as the page does; panics after 10 seconds.
    fn wait_for_state(&self, what: &str, done: impl Fn(&Value) -> bool) -> (Value, Duration) {
        let started = Instant::now();
        loop {
            let state = self.state();
            if done(&state) {
                return (state, started.elapsed());
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{what}: not after 10 s; the state is {state:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ctrl-C, and how it ended; it must end within 10 seconds.
    fn interrupt(mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "preview did not stop within 10 s of Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PreviewProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every path under `root` but the test's own log, to show that a preview leaves nothing
/// behind.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path.clone());
            }
            if !path.ends_with("preview.log") {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
}

/// Sends one raw request with `host` and returns the answer's status line and headers.
fn with_host(preview: &PreviewProcess, host: &str) -> String {
    raw_request(preview, &format!("GET / HTTP/1.1\r\nHost: {host}\r\n"))
}

/// Sends `head` (a request line and headers, each ending in CRLF) and returns the answer.
fn raw_request(preview: &PreviewProcess, head: &str) -> String {
    let address = preview.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(stream, "{head}Connection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn the_email_is_served_byte_for_byte_as_render_writes_it_and_nothing_is_created() {
    let workspace = TestWorkspace::example();
    let rendered = workspace
        .command()
        .env("LETTERPRESS_SECRET", SECRET)
        .args(["render", "2021-08-23", "--out", "out"])
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{rendered:?}");
    let before = tree(workspace.root());

    let preview = PreviewProcess::start(&workspace, &["2021-08-23"]);
    let html = get(&preview.url("/email.html"));
    assert_eq!(html.status, 200);
    assert_eq!(html.body, workspace.read("out/2021-08-23/email.html"));
    assert_eq!(
        html.header("content-security-policy"),
        Some(
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data: 'self'; font-src https: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
        ),
        "no script runs in the email"
    );
    let text = get(&preview.url("/email.txt"));
    assert_eq!(text.body, workspace.read("out/2021-08-23/email.txt"));
    assert!(text.body.contains("Hi Ada Okafor,"), "{}", text.body);

    let dark = get(&preview.url("/email-dark.html")).body;
    assert_eq!(dark, letterpress::preview::dark_variant(&html.body));
    assert!(html.body.contains("@media (prefers-color-scheme: dark)"));
    assert!(!dark.contains("prefers-color-scheme"));

    let page = get(&preview.url("/"));
    assert_eq!(page.status, 200);
    let policy = page.header("content-security-policy").unwrap();
    assert!(
        policy.starts_with("default-src 'none'; script-src 'self'; style-src 'self';"),
        "{policy}"
    );
    assert!(!policy.contains("unsafe"), "{policy}");
    assert!(page.body.contains("<iframe id=\"frame-phone\""));
    assert!(
        page.body
            .contains("for <span id=\"reader\">Ada Okafor &lt;ada.okafor@example.com&gt;</span>")
    );
    // Gmail's phone app shows 33 characters of the subject; the rest is shown cut.
    assert!(page.body.contains("<span id=\"subject-phone\">Global AI Weekly #1: Foundation m</span><span class=\"pv-cut\" id=\"subject-phone-cut\">odels, Codex API and Tesla's Dojo</span>"), "{}", page.body);
    assert_eq!(get(&preview.url("/images/logo-0123abcd.png")).status, 404);
    assert_eq!(get(&preview.url("/nothing-here")).status, 404);

    assert!(preview.interrupt().success());
    assert_eq!(
        tree(workspace.root()),
        before,
        "a preview must create nothing"
    );
}

#[test]
fn a_local_image_shows_from_the_workspace_before_it_is_published_and_a_new_save_replaces_it() {
    let workspace = TestWorkspace::example();
    let chart = crate::support::png(200, 100, [30, 90, 200]);
    workspace.write_bytes("art/chart.png", &chart);
    workspace.write(
        "issues/2021-08-30.yaml",
        &format!(
            "{SMALL_ISSUE}        image:\n          src: ./art/chart.png\n          alt: A blue chart\n"
        ),
    );
    let preview = PreviewProcess::start(&workspace, &["2021-08-30"]);
    let html = get(&preview.url("/email.html")).body;
    let src = html
        .split("src=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .find(|src| src.contains("chart-"))
        .unwrap_or_else(|| panic!("no chart image in {html}"));
    assert!(
        src.starts_with("/images/chart-") && src.ends_with(".png"),
        "the site has nothing yet, so the preview shows it: {src}"
    );
    let (status, headers, bytes) = crate::support::get_bytes(&preview.url(src));
    assert_eq!(status, 200);
    assert!(
        headers.contains(&("content-type".into(), "image/png".into())),
        "{headers:?}"
    );
    assert_eq!(bytes, chart);

    // Saved again with other pixels (outside images/: the issue's own files are watched
    // wherever they are): a new name, and the old one is gone.
    let before = preview.state()["version"].as_u64();
    let redrawn = crate::support::png(200, 100, [200, 30, 30]);
    workspace.write_bytes("art/chart.png", &redrawn);
    preview.wait_for_state("the redrawn chart", |state| {
        state["version"].as_u64() > before
    });
    let html = get(&preview.url("/email.html")).body;
    let new_src = html
        .split("src=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .find(|src| src.contains("chart-"))
        .unwrap();
    assert_ne!(new_src, src);
    assert_eq!(crate::support::get_bytes(&preview.url(new_src)).2, redrawn);
    assert_eq!(get(&preview.url(src)).status, 404);
    assert!(preview.interrupt().success());
}

#[test]
fn a_request_that_names_another_host_is_refused() {
    let workspace = TestWorkspace::example();
    let preview = PreviewProcess::start(&workspace, &[]);
    for other in [
        "evil.example",
        "evil.example:4000",
        "localhost.evil.example",
    ] {
        let answer = with_host(&preview, other);
        assert!(answer.starts_with("HTTP/1.1 403 "), "{other}: {answer}");
        assert!(!answer.contains("ada.okafor"), "{answer}");
    }
    // A local name first does not let a second name through, nor a foreign absolute target.
    for head in [
        "GET / HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n",
        "GET http://evil.example/ HTTP/1.1\r\nHost: localhost\r\n",
    ] {
        let answer = raw_request(&preview, head);
        assert!(
            answer.starts_with("HTTP/1.1 403 ") || answer.starts_with("HTTP/1.1 400 "),
            "{head:?}: {answer}"
        );
        assert!(!answer.contains("ada.okafor"), "{answer}");
    }
    for local in [
        "localhost",
        "localhost:4000",
        "127.0.0.1:4000",
        "[::1]:4000",
    ] {
        let answer = with_host(&preview, local);
        assert!(answer.starts_with("HTTP/1.1 200 "), "{local}: {answer}");
    }
}

#[test]
fn a_listen_address_beyond_this_machine_needs_allow_remote_and_a_bad_reader_is_refused() {
    let workspace = TestWorkspace::example();
    let run = workspace.run(&["preview", "--listen", "0.0.0.0:0"]);
    assert_eq!(run.status, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: --listen 0.0.0.0:0: other machines could reach the preview, which shows a reader's address and unsubscribe link; add --allow-remote if that is what you want\n"
    );
    let run = workspace.run(&["preview", "--as", "not an address"]);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stderr.starts_with("error: --as `not an address`: "),
        "{}",
        run.stderr
    );
    let run = workspace.run(&["preview", "2031-01-01"]);
    assert_eq!(run.status, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: no issue file `issues/2031-01-01.yaml`: name one in issues/ (2021-08-23) or give its path\n"
    );
    assert!(!workspace.path(".letterpress").exists());
}

#[test]
fn an_edit_shows_up_and_a_broken_issue_keeps_the_last_good_render_under_its_problems() {
    let workspace = TestWorkspace::example();
    let preview = PreviewProcess::start(&workspace, &["2021-08-23"]);
    let first = preview.state();
    assert_eq!(first["shown"]["inbox"]["desktop_subject"]["shown"], SUBJECT);
    assert_eq!(first["stale"], false);

    workspace.replace(ISSUE, SUBJECT_LINE, "subject: \"Edited while watching\"");
    let (edited, took) = preview.wait_for_state("the new subject", |state| {
        state["shown"]["inbox"]["desktop_subject"]["shown"] == "Edited while watching"
    });
    eprintln!("the new subject was in the state {took:?} after the save");
    assert!(edited["version"].as_u64() > first["version"].as_u64());
    assert!(
        get(&preview.url("/email.html"))
            .body
            .contains("<title>Edited while watching</title>")
    );

    workspace.replace(
        ISSUE,
        "subject: \"Edited while watching\"",
        "subject: \"Edited while watching",
    );
    let (broken, _) = preview.wait_for_state("the banner", |state| state["stale"] == true);
    let problems: Vec<&str> = broken["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|problem| problem["text"].as_str().unwrap())
        .collect();
    assert!(
        problems
            .iter()
            .any(|text| text.starts_with("issues/2021-08-23.yaml:")),
        "{problems:?}"
    );
    assert_eq!(broken["problems"][0]["level"], "error");
    assert!(
        broken["summary"].as_str().unwrap().starts_with("1 error"),
        "{broken:#}"
    );
    assert_eq!(
        broken["shown"]["inbox"]["desktop_subject"]["shown"], "Edited while watching",
        "the last good render stays"
    );
    assert!(
        get(&preview.url("/email.html"))
            .body
            .contains("<title>Edited while watching</title>")
    );

    workspace.replace(
        ISSUE,
        "subject: \"Edited while watching",
        "subject: \"Fixed\"",
    );
    preview.wait_for_state("the fixed issue", |state| {
        state["stale"] == false && state["shown"]["inbox"]["desktop_subject"]["shown"] == "Fixed"
    });
    // The page's script asks with the version it has, and an unchanged state is a 204.
    let version = preview.state()["version"].as_u64().unwrap();
    assert_eq!(
        get(&preview.url(&format!("/state.json?since={version}"))).status,
        204
    );
    assert!(preview.interrupt().success());
}

#[test]
fn without_an_issue_it_follows_the_file_saved_last_as_the_reader_asked_for() {
    let workspace = TestWorkspace::example();
    let preview = PreviewProcess::start(&workspace, &["--as", "li.wei@research.example.org"]);
    let state = preview.state();
    assert_eq!(state["issue_file"], ISSUE);
    assert_eq!(
        state["shown"]["reader"],
        "李伟 <li.wei@research.example.org>"
    );
    assert!(
        state["shown"]["text"]
            .as_str()
            .unwrap()
            .contains("Hi 李伟,")
    );

    workspace.write("issues/2021-08-30.yaml", SMALL_ISSUE);
    let (state, _) = preview.wait_for_state("the new issue", |state| {
        state["issue_file"] == "issues/2021-08-30.yaml"
    });
    assert_eq!(
        state["shown"]["inbox"]["desktop_subject"]["shown"],
        "Small issue"
    );
    assert_eq!(
        state["shown"]["inbox"]["desktop_snippet"]["shown"],
        "A short preview line"
    );
}

// ---------------------------------------------------------------------------------------
// In a browser.

const CHROMIUM: &str = "/usr/bin/chromium";
const DESKTOP: (u32, u32) = (1280, 900);

fn screenshots_dir() -> PathBuf {
    // target/tmp is where cargo lets integration tests write; its parent is target/.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Headless Chromium with its DevTools endpoint, killed when dropped.
struct Chromium {
    child: Child,
    _profile: tempfile::TempDir,
    endpoint: String,
}

impl Chromium {
    fn start() -> Chromium {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                // Every name but loopback fails to resolve, so the articles' images (on the
                // internet) cost no traffic and the run stays on this machine.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot run {CHROMIUM} ({error}): `apt-get install chromium` (.ci/run does)")
            });
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = String::new();
        let endpoint = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
                let _ = child.kill();
                panic!("chromium gave no DevTools endpoint:\n{seen}");
            }
            if let Some(url) = line.trim().strip_prefix("DevTools listening on ") {
                break url.to_string();
            }
            seen.push_str(&line);
        };
        // Chromium blocks when its stderr is full: keep reading it.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Chromium {
            child,
            _profile: profile,
            endpoint,
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A page in Chromium, driven over the DevTools protocol (one WebSocket, one session).
struct Tab {
    socket: tungstenite::WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Events that say something went wrong on the page: exceptions, policy violations.
    problems: Vec<String>,
}

impl Tab {
    fn open(chromium: &Chromium) -> Tab {
        let address = chromium
            .endpoint
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap();
        let stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let (socket, _) = tungstenite::client(chromium.endpoint.as_str(), stream).unwrap();
        let mut tab = Tab {
            socket,
            session: String::new(),
            next_id: 0,
            problems: Vec::new(),
        };
        let target = tab.call("Target.createTarget", json!({ "url": "about:blank" }));
        let attached = tab.call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        tab.session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            tab.call(domain, json!({}));
        }
        tab
    }

    /// Sends a command (to the page once attached) and waits for its answer, noting the
    /// events that come before it.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket
            .send(tungstenite::Message::Text(message.to_string().into()))
            .unwrap();
        loop {
            let tungstenite::Message::Text(text) = self.socket.read().unwrap() else {
                continue;
            };
            let message: Value = serde_json::from_str(text.as_str()).unwrap();
            if message["id"] == id {
                assert!(message["error"].is_null(), "{method}: {message}");
                return message["result"].clone();
            }
            self.note(&message);
        }
    }

    fn note(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => self.problems.push(params.to_string()),
            Some("Log.entryAdded") => {
                let entry = &params["entry"];
                let text = entry["text"].as_str().unwrap_or_default();
                // The articles' images fail to load by design (no names resolve); a
                // policy violation or a script error is what counts.
                if entry["source"] == "security"
                    || text.contains("Content Security Policy")
                    || entry["source"] == "javascript"
                {
                    self.problems.push(entry.to_string());
                }
            }
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                self.problems.push(params.to_string())
            }
            _ => {}
        }
    }

    /// The value of a JavaScript expression on the page.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is `expected`, checking every 20 ms; how long it
    /// took. Panics after `limit`.
    fn wait_for(&mut self, expression: &str, expected: Value, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let value = self.eval(expression);
            if value == expected {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "{expression} was {value}, not {expected}, after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Saves a PNG of the viewport, or of `clip` (page coordinates, beyond the viewport if
    /// need be); returns its width and height as the file says.
    fn screenshot(&mut self, png: &Path, clip: Option<Value>) -> (u32, u32) {
        use base64::Engine as _;
        let mut params = json!({ "format": "png" });
        if let Some(clip) = clip {
            params["clip"] = clip;
            params["captureBeyondViewport"] = json!(true);
        }
        let shot = self.call("Page.captureScreenshot", params);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(bytes.len() > 2_000, "{} is blank", png.display());
        std::fs::write(png, &bytes).unwrap();
        let number = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        (number(16), number(20))
    }
}

/// The JavaScript for a frame's document (same origin, so the page's script can see it).
fn in_frame(frame: &str, expression: &str) -> String {
    format!(
        "(() => {{ const d = document.getElementById('frame-{frame}').contentDocument; return d && d.readyState === 'complete' ? {expression} : null; }})()"
    )
}

#[test]
fn in_a_browser_a_saved_edit_shows_within_two_seconds_and_a_broken_one_shows_the_banner() {
    if !have_tool(CHROMIUM, "chromium") {
        return;
    }
    let workspace = TestWorkspace::example();
    let preview = PreviewProcess::start(&workspace, &[]);
    let chromium = Chromium::start();
    let mut tab = Tab::open(&chromium);
    let dir = screenshots_dir();
    let shot = |name: &str| dir.join(format!("preview-{name}.png"));

    tab.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": DESKTOP.0, "height": DESKTOP.1, "deviceScaleFactor": 1, "mobile": false }),
    );
    tab.call("Page.navigate", json!({ "url": preview.url("/") }));
    let subject = "document.getElementById('subject-desktop')?.textContent ?? null";
    tab.wait_for(subject, json!(SUBJECT), Duration::from_secs(30));
    // Both frames loaded and sized to the whole email: the page scrolls, not the frames.
    for frame in ["phone", "desktop"] {
        tab.wait_for(
            &in_frame(frame, "d.title"),
            json!(SUBJECT),
            Duration::from_secs(30),
        );
        tab.wait_for(
            &format!(
                "document.getElementById('frame-{frame}').getBoundingClientRect().height > 1500"
            ),
            json!(true),
            Duration::from_secs(10),
        );
    }
    // At 375 px the theme's phone rules apply; at 700 px they do not.
    let padding = |frame: &str| {
        in_frame(
            frame,
            "getComputedStyle(d.querySelector('.lp-content')).paddingLeft",
        )
    };
    assert_eq!(tab.eval(&padding("phone")), json!("18px"));
    assert_eq!(tab.eval(&padding("desktop")), json!("32px"));
    assert_eq!(tab.screenshot(&shot("desktop"), None), DESKTOP);

    let rect = tab.eval(
        "(() => { const r = document.getElementById('frame-phone').getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY, r.width, r.height]; })()",
    );
    let phone = tab.screenshot(
        &shot("phone"),
        Some(
            json!({ "x": rect[0], "y": rect[1], "width": rect[2], "height": rect[3], "scale": 1 }),
        ),
    );
    assert_eq!(phone.0, 377, "the phone frame, 375 px and its border");

    // Saving a new subject: the inbox line and the email both show it, without a reload of
    // the page (the marker set on it survives).
    tab.eval("window.notReloaded = true");
    workspace.replace(ISSUE, SUBJECT_LINE, "subject: \"Seen in the preview\"");
    let saved = Instant::now();
    tab.wait_for(
        subject,
        json!("Seen in the preview"),
        Duration::from_secs(2),
    );
    let in_inbox_line = saved.elapsed();
    tab.wait_for(
        &in_frame("desktop", "d.title"),
        json!("Seen in the preview"),
        Duration::from_secs(2),
    );
    let in_email = saved.elapsed();
    eprintln!(
        "after the save: the new subject in the inbox line in {in_inbox_line:?}, in the email in {in_email:?}"
    );
    assert!(in_email < Duration::from_secs(2), "{in_email:?}");
    assert_eq!(tab.eval("window.notReloaded === true"), json!(true));

    tab.eval("document.getElementById('mode-dark').click()");
    tab.wait_for(
        &in_frame(
            "desktop",
            "getComputedStyle(d.querySelector('.lp-container')).backgroundColor",
        ),
        json!("rgb(26, 33, 43)"),
        Duration::from_secs(10),
    );
    tab.wait_for(
        &in_frame("phone", "getComputedStyle(d.body).backgroundColor"),
        json!("rgb(15, 20, 25)"),
        Duration::from_secs(10),
    );
    assert_eq!(tab.screenshot(&shot("dark"), None), DESKTOP);
    tab.eval("document.getElementById('mode-light').click()");

    tab.eval("document.getElementById('tab-text').click()");
    tab.wait_for(
        "document.getElementById('pane-text').hidden === false && document.getElementById('text').textContent.includes('Hi Ada Okafor,')",
        json!(true),
        Duration::from_secs(5),
    );
    assert_eq!(tab.screenshot(&shot("text"), None), DESKTOP);
    tab.eval("document.getElementById('tab-html').click()");

    // Broken YAML: the banner names the place, and the last good render stays below it.
    workspace.replace(
        ISSUE,
        "subject: \"Seen in the preview\"",
        "subject: \"Seen in the preview",
    );
    let broken = Instant::now();
    tab.wait_for(
        "!document.getElementById('banner').hidden && !document.getElementById('stale').hidden && document.getElementById('problems').textContent.includes('issues/2021-08-23.yaml:')",
        json!(true),
        Duration::from_secs(2),
    );
    eprintln!(
        "the banner showed {:?} after the broken save",
        broken.elapsed()
    );
    assert_eq!(tab.eval(subject), json!("Seen in the preview"));
    assert_eq!(
        tab.eval(&in_frame("desktop", "d.title")),
        json!("Seen in the preview")
    );
    assert_eq!(tab.screenshot(&shot("error"), None), DESKTOP);

    assert!(
        tab.problems.is_empty(),
        "errors on the page:\n{}",
        tab.problems.join("\n")
    );
    eprintln!("screenshots in {}", dir.display());
    assert!(preview.interrupt().success());
}
