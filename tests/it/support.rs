//! Helpers shared by the integration tests: a fresh workspace in a temp dir per test, and the
//! real binary run in it with the tool's own environment removed.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// The example workspace at the repository root, copied into a temp dir.
pub struct TestWorkspace {
    dir: tempfile::TempDir,
}

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

impl TestWorkspace {
    /// A copy of the repository's example workspace.
    pub fn example() -> Self {
        let workspace = TestWorkspace::empty();
        for file in ["newsletter.yaml", "subscribers.example.yaml"] {
            std::fs::copy(Path::new(REPO).join(file), workspace.path(file)).unwrap();
        }
        copy_dir(&Path::new(REPO).join("issues"), &workspace.path("issues"));
        copy_dir(
            &Path::new(REPO).join("templates"),
            &workspace.path("templates"),
        );
        workspace
    }

    pub fn empty() -> Self {
        TestWorkspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn write(&self, relative: &str, contents: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    pub fn write_bytes(&self, relative: &str, contents: &[u8]) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap()
    }

    /// Edits a file by replacing one exact piece of text, which must be there.
    pub fn replace(&self, relative: &str, from: &str, to: &str) {
        let text = self.read(relative);
        assert!(text.contains(from), "{relative} does not contain {from:?}");
        self.write(relative, &text.replacen(from, to, 1));
    }

    /// The binary, run in this workspace, with no LETTERPRESS_* variables from outside.
    pub fn command(&self) -> Command {
        Command::from_std(self.std_command())
    }

    /// The same, as a plain `std` command, for tests that start it and signal it.
    pub fn std_command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin!("letterpress"));
        command.current_dir(self.root());
        for (name, _) in std::env::vars() {
            if name.starts_with("LETTERPRESS_") {
                command.env_remove(name);
            }
        }
        command.env("LETTERPRESS_NOW", "2021-08-16T12:00:00Z");
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command().args(args).output().unwrap())
    }
}

/// What a run of the binary printed, and how it exited.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A small, complete issue for tests that need a known shape.
pub const SMALL_ISSUE: &str = r#"number: 7
date: 2021-08-30
status: ready
subject: "Small issue"
preheader: "A short preview line"
intro: |
  Hello *readers*.
sections:
  - heading: News
    articles:
      - title: First story
        url: https://news.example.com/first
        source: Example News
        author: Ann Writer
        excerpt: |
          The first excerpt, with a [link](https://news.example.com/more).
"#;

/// The example newsletter's `delivery:` block, for tests that replace it.
pub const EXAMPLE_DELIVERY: &str = "delivery:
  # Number of messages sent in parallel.
  concurrency: 4
  # Maximum messages per second, across all workers.
  rate_per_second: 50
  # Attempts per recipient before giving up on a temporary failure.
  max_attempts: 5
";

/// What `check` says first of a workspace without `dkim:`, as the example is.
pub const DKIM_NOT_SET: &str = "newsletter.yaml: warning: dkim: not set, so messages go out unsigned, and Gmail and Yahoo want bulk mail signed by the From domain: `letterpress dkim keygen` makes a key and prints the DNS record and the lines to add";

/// A fixed secret, so tokens and Message-IDs are the same from run to run.
pub const SECRET: &str = "a test secret that is long enough to be accepted";

impl TestWorkspace {
    /// The example workspace with its own subscriber list and delivery settings.
    pub fn for_delivery(subscribers: &str, delivery: &str) -> Self {
        let workspace = TestWorkspace::example();
        workspace.write("subscribers.example.yaml", subscribers);
        workspace.replace("newsletter.yaml", EXAMPLE_DELIVERY, delivery);
        workspace
    }

    /// The binary, sending through `smtp_url`.
    pub fn sender(&self, smtp_url: &str) -> Command {
        Command::from_std(self.std_sender(smtp_url))
    }

    pub fn std_sender(&self, smtp_url: &str) -> std::process::Command {
        let mut command = self.std_command();
        command.env("LETTERPRESS_SMTP_URL", smtp_url);
        command.env("LETTERPRESS_SECRET", SECRET);
        command
    }

    pub fn send(&self, smtp_url: &str, args: &[&str]) -> Run {
        Run::from(
            self.sender(smtp_url)
                .arg("send")
                .args(args)
                .output()
                .unwrap(),
        )
    }

    pub fn ledger(&self) -> letterpress::ledger::Ledger {
        std::fs::create_dir_all(self.path(".letterpress")).unwrap();
        letterpress::ledger::Ledger::open(&self.path(".letterpress/ledger.sqlite3")).unwrap()
    }
}

/// `count` subscribers named `Reader N` at `readerN@example.com`.
pub fn numbered_subscribers(count: usize) -> String {
    (0..count)
        .map(|index| format!("- email: reader{index}@example.com\n  name: Reader {index}\n"))
        .collect()
}

/// `letterpress serve` running in a workspace on a random loopback port, stopped when
/// dropped. Its log goes to `serve.log` in the workspace.
pub struct ServeProcess {
    child: std::process::Child,
    /// Kept open: the server would fail writing to a closed stdout.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
    pub base: String,
}

impl ServeProcess {
    pub fn start(workspace: &TestWorkspace) -> ServeProcess {
        ServeProcess::start_with(workspace, &[])
    }

    /// The same, with more environment (a relay for confirmation emails, a clock).
    pub fn start_with(workspace: &TestWorkspace, env: &[(&str, &str)]) -> ServeProcess {
        use std::io::BufRead;
        let log = std::fs::File::create(workspace.path("serve.log")).unwrap();
        let mut command = workspace.std_command();
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .env("LETTERPRESS_SECRET", SECRET)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut first_line = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut first_line).unwrap();
        let base = first_line
            .trim_end()
            .rsplit_once(" on ")
            .map(|(_, url)| url.trim_end_matches('/').to_string())
            .filter(|url| url.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "serve did not start: {first_line:?}\n{}",
                    workspace.read("serve.log")
                )
            });
        ServeProcess {
            child,
            _stdout: stdout,
            base,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The port, for raw connections.
    pub fn address(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer as a test checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A plain HTTP client: statuses are answers, not errors, and redirects are not followed.
pub fn http(method: &str, url: &str, form: Option<&str>) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(20)))
        .build()
        .into();
    let result = match (method, form) {
        ("GET", None) => agent.get(url).call(),
        ("POST", Some(body)) => agent
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(body),
        ("POST", None) => agent.post(url).send_empty(),
        other => panic!("no such request in these tests: {other:?}"),
    };
    let mut response = result.unwrap_or_else(|error| panic!("{method} {url}: {error}"));
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                value.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    Reply {
        status: response.status().as_u16(),
        headers,
        body: response.body_mut().read_to_string().unwrap(),
    }
}

pub fn get(url: &str) -> Reply {
    http("GET", url, None)
}

/// What a mail app's unsubscribe button sends (RFC 8058).
pub fn one_click(url: &str) -> Reply {
    http("POST", url, Some("List-Unsubscribe=One-Click"))
}

/// An issue id, as the ledger's methods take it.
pub fn issue(id: &str) -> letterpress::model::issue::IssueId {
    letterpress::model::issue::IssueId::parse(id).unwrap()
}

/// An address as the ledger keys it.
pub fn key(address: &str) -> letterpress::model::address::AddressKey {
    letterpress::model::address::AddressKey::of(address).unwrap()
}

/// Whether a program a test needs from the system (Chromium, Postfix, Dovecot, dkimpy) is
/// installed. Outside CI a missing one skips the test with a printed reason, so `cargo test`
/// passes on a machine with only Rust; with `CI` set it fails the test, so CI never passes
/// by skipping.
pub fn have_tool(program: &str, package: &str) -> bool {
    let found = if program.contains('/') {
        Path::new(program).exists()
    } else {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
    };
    if found {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{program} is missing and CI is set: install Debian's {package} (.ci/run does)");
    }
    eprintln!("skipped: {program} is not installed (Debian's {package}; .ci/run installs it)");
    false
}

/// Sizes as letterpress prints them (`25.2 KiB`, `812 B`) replaced by `<size>`, and the
/// sizes in bytes: a test pins the rest of the line and asserts a limit on the size, so a
/// change to the stylesheet does not break it.
pub fn mask_sizes(text: &str) -> (String, Vec<f64>) {
    let mut out = String::with_capacity(text.len());
    let mut sizes = Vec::new();
    let mut rest = text;
    while let Some(position) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..position]);
        rest = &rest[position..];
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        let unit = [(" KiB", 1024.0), (" MiB", 1024.0 * 1024.0), (" B", 1.0)]
            .into_iter()
            .find(|(unit, _)| {
                after.starts_with(unit)
                    && !after[unit.len()..].starts_with(|c: char| c.is_alphanumeric())
            });
        match (unit, number.parse::<f64>()) {
            (Some((unit, scale)), Ok(value)) => {
                out.push_str("<size>");
                sizes.push(value * scale);
                rest = &after[unit.len()..];
            }
            _ => {
                out.push_str(number);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    (out, sizes)
}

/// Every size is an HTML part Gmail shows whole (it clips above 102 KiB).
pub fn assert_under_gmail_clip(sizes: &[f64]) {
    assert!(!sizes.is_empty(), "no size was printed");
    for size in sizes {
        assert!(
            *size > 0.0 && *size < letterpress::render::GMAIL_CLIP_BYTES as f64,
            "{size} bytes"
        );
    }
}

#[test]
fn sizes_are_masked_and_read_back_in_bytes() {
    let (masked, sizes) = mask_sizes("HTML 25.2 KiB, 812 B and 1.5 MiB; 3 Bytes, 7 sections");
    assert_eq!(
        masked,
        "HTML <size>, <size> and <size>; 3 Bytes, 7 sections"
    );
    assert_eq!(sizes, [25.2 * 1024.0, 812.0, 1.5 * 1024.0 * 1024.0]);
}

/// A real PNG of one colour (8-bit RGB, stored without compression), that browsers show
/// and `check` measures.
pub fn png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    // Each row: filter type 0 (none), then the pixels.
    let row: Vec<u8> = std::iter::once(0)
        .chain(rgb.iter().copied().cycle().take(3 * width as usize))
        .collect();
    let raw = row.repeat(height as usize);
    // zlib: header, stored blocks of at most 65535 bytes, Adler-32.
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65535).collect();
    for (index, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(index + 1 == blocks.len()));
        let length = block.len() as u16;
        zlib.extend_from_slice(&length.to_le_bytes());
        zlib.extend_from_slice(&(!length).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// The body of a GET as bytes, with the status and headers.
pub fn get_bytes(url: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(20)))
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .unwrap_or_else(|error| panic!("GET {url}: {error}"));
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                value.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec().unwrap();
    (status, headers, body)
}
