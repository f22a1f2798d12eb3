//! A real IMAP server for tests: Debian's Dovecot, started on 127.0.0.1 on random ports with
//! a throwaway configuration, certificate and Maildir in a temp dir, stopped on drop.
//!
//! One user (`USER`/`PASSWORD`, from a passwd-file) whose mail is a Maildir the test can
//! write messages into and read back, flags and all, without going through IMAP. Two
//! listeners: `imaps` (TLS from the first byte) and `imap` (STARTTLS, or plaintext, which
//! Dovecot allows from loopback only); `ssl = required` refuses a password over anything
//! else. The certificate comes from a certificate authority made for the test (`ca_pem`), for
//! `127.0.0.1`.
//!
//! As root (CI, these machines) Dovecot's own `dovecot` and `dovenull` users run its
//! processes and the mail belongs to `nobody`; as anyone else, everything runs as that user.
//! No dependency on the crate under test: it can move to `testkit` as it is.

#![allow(dead_code)] // Each test binary that includes this uses a different part of it.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

pub const USER: &str = "bounces";
pub const PASSWORD: &str = "correct horse battery staple";

/// A folder of the user's Maildir++: the inbox, or a folder by name.
#[derive(Debug, Clone, Copy)]
pub enum Folder<'a> {
    Inbox,
    Named(&'a str),
}

/// A message as it lies in the Maildir.
#[derive(Debug, Clone)]
pub struct Stored {
    pub path: PathBuf,
    /// The Maildir flag letters: `S` seen, `F` flagged, `T` deleted, `R` replied, `D` draft,
    /// `a`-`z` keywords (named in `dovecot-keywords`); empty for a message in `new/`.
    pub flags: String,
    pub bytes: Vec<u8>,
}

pub struct Dovecot {
    dir: tempfile::TempDir,
    child: Child,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub ca_pem: String,
    /// Owner of the mail files (uid, gid).
    owner: (u32, u32),
}

/// Where Debian puts it, whether or not `/usr/sbin` is on the PATH.
/// Debian installs it in /usr/sbin, which is not on every user's PATH.
const DOVECOT: &str = "/usr/sbin/dovecot";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA, and a certificate for 127.0.0.1 and localhost it signed: (ca, cert, key) in PEM.
fn certificates() -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

static MESSAGE_NUMBER: AtomicU32 = AtomicU32::new(1);

impl Dovecot {
    /// A running Dovecot, or `None` (with the reason on stderr) when it is not installed and
    /// `CI` is unset. With `CI` set, a missing Dovecot fails the test.
    pub fn start() -> Option<Dovecot> {
        Dovecot::start_with_capabilities(None)
    }

    /// As `start`, announcing exactly `capabilities` (Dovecot's `imap_capability`), to play
    /// a server without MOVE or UIDPLUS. The commands themselves still work.
    pub fn start_with_capabilities(capabilities: Option<&str>) -> Option<Dovecot> {
        if !crate::support::have_tool(DOVECOT, "dovecot-imapd") {
            return None;
        }
        let binary = PathBuf::from(DOVECOT);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let is_root = unsafe { libc::geteuid() } == 0;
        let (internal_user, login_user, internal_group, owner) = if is_root {
            // Dovecot's package makes these users; mail must not belong to root.
            (
                "dovecot".to_string(),
                "dovenull".to_string(),
                "dovecot".to_string(),
                (65534, 65534),
            )
        } else {
            let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
                .unwrap()
                .trim()
                .to_string();
            let group = String::from_utf8(Command::new("id").arg("-gn").output().unwrap().stdout)
                .unwrap()
                .trim()
                .to_string();
            let owner = unsafe { (libc::getuid(), libc::getgid()) };
            (user.clone(), user, group, owner)
        };
        // The mail processes run as `owner` and must reach the Maildir inside the temp dir.
        set_mode(root, 0o755);
        for sub in ["run", "state"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        let (ca_pem, cert_pem, key_pem) = certificates();
        std::fs::write(root.join("cert.pem"), cert_pem).unwrap();
        std::fs::write(root.join("key.pem"), key_pem).unwrap();
        set_mode(&root.join("key.pem"), 0o600);
        std::fs::write(
            root.join("passwd"),
            format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"),
        )
        .unwrap();
        let (imap_port, imaps_port) = (free_port(), free_port());
        let capability_line = capabilities
            .map(|list| format!("imap_capability = {list}\n"))
            .unwrap_or_default();
        let root_text = root.display();
        let (uid, gid) = owner;
        let config = format!(
            r#"# A throwaway Dovecot for letterpress's tests.
base_dir = {root_text}/run
state_dir = {root_text}/state
log_path = {root_text}/dovecot.log
instance_name = letterpress-test-{imap_port}
protocols = imap
listen = 127.0.0.1
{capability_line}ssl = required
ssl_cert = <{root_text}/cert.pem
ssl_key = <{root_text}/key.pem
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
# A refused password answers at once: the tests try one on purpose.
auth_failure_delay = 0
first_valid_gid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root_text}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root_text}/home
}}
mail_location = maildir:{root_text}/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"#
        );
        std::fs::write(root.join("dovecot.conf"), config).unwrap();
        let dovecot = Dovecot {
            child: Command::new(&binary)
                .arg("-F")
                .arg("-c")
                .arg(root.join("dovecot.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(root.join("stderr.log")).unwrap())
                .spawn()
                .expect("dovecot starts"),
            dir,
            imap_port,
            imaps_port,
            ca_pem,
            owner,
        };
        for folder in ["", "/cur", "/new", "/tmp"] {
            dovecot.make_owned_dir(&dovecot.maildir().join(folder.trim_start_matches('/')));
        }
        dovecot.make_owned_dir(&dovecot.dir.path().join("home"));
        dovecot.wait_until_listening();
        Some(dovecot)
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let up = [self.imap_port, self.imaps_port]
                .iter()
                .all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok());
            if up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "dovecot did not start listening in 15 s; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn imaps_url(&self) -> String {
        format!(
            "imaps://{USER}:{}@127.0.0.1:{}/INBOX",
            encoded(PASSWORD),
            self.imaps_port
        )
    }

    pub fn starttls_url(&self) -> String {
        format!(
            "imap://{USER}:{}@127.0.0.1:{}/INBOX",
            encoded(PASSWORD),
            self.imap_port
        )
    }

    pub fn plaintext_url(&self) -> String {
        format!("{}?tls=none", self.starttls_url())
    }

    /// Dovecot's log, and anything it said on stderr before it had one.
    pub fn log(&self) -> String {
        ["stderr.log", "dovecot.log"]
            .iter()
            .map(|name| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default())
            .collect()
    }

    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("Maildir")
    }

    fn folder_dir(&self, folder: Folder<'_>) -> PathBuf {
        match folder {
            Folder::Inbox => self.maildir(),
            Folder::Named(name) => self.maildir().join(format!(".{name}")),
        }
    }

    /// Puts a message into `folder` as a delivery agent would: into `new/` when `flags` is
    /// `None`, else into `cur/` with those Maildir flag letters (`"S"`, `"FS"`, `"T"`).
    pub fn deliver(&self, folder: Folder<'_>, flags: Option<&str>, bytes: &[u8]) -> PathBuf {
        let base = self.folder_dir(folder);
        for sub in ["", "cur", "new", "tmp"] {
            self.make_owned_dir(&base.join(sub));
        }
        let number = MESSAGE_NUMBER.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "1629725400.M{number}P{}.letterpress-test",
            std::process::id()
        );
        let path = match flags {
            None => base.join("new").join(name),
            Some(flags) => {
                let mut letters: Vec<char> = flags.chars().collect();
                letters.sort_unstable();
                let flags: String = letters.into_iter().collect();
                base.join("cur").join(format!("{name}:2,{flags}"))
            }
        };
        std::fs::write(&path, bytes).unwrap();
        self.chown(&path);
        path
    }

    /// The messages in `folder`, in `new/` and `cur/`, as they lie on disk.
    pub fn stored(&self, folder: Folder<'_>) -> Vec<Stored> {
        let base = self.folder_dir(folder);
        let mut stored = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(base.join(sub)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let flags = name
                    .split_once(":2,")
                    .map(|(_, flags)| flags.to_string())
                    .unwrap_or_default();
                stored.push(Stored {
                    bytes: std::fs::read(&path).unwrap(),
                    path,
                    flags,
                });
            }
        }
        stored
    }

    /// The keyword names that Maildir flag letters `a`, `b`... stand for in `folder`.
    pub fn keywords(&self, folder: Folder<'_>) -> Vec<String> {
        let text = std::fs::read_to_string(self.folder_dir(folder).join("dovecot-keywords"))
            .unwrap_or_default();
        text.lines()
            .filter_map(|line| line.split_once(' ').map(|(_, name)| name.to_string()))
            .collect()
    }

    fn make_owned_dir(&self, path: &Path) {
        std::fs::create_dir_all(path).unwrap();
        self.chown(path);
    }

    fn chown(&self, path: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        let (uid, gid) = self.owner;
        // Only root can give files away; as anyone else they are already the owner's.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(unsafe { libc::chown(path.as_ptr(), uid, gid) }, 0);
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM to the master we started: it stops the processes it started.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The password as it goes into a URL.
fn encoded(text: &str) -> String {
    text.replace('%', "%25").replace(' ', "%20")
}
