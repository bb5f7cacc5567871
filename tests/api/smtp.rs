//! A real SMTP server for the mail tests: Python's `aiosmtpd` (installed into a cached virtualenv
//! by `tests/smtp/setup.sh`), storing each received message as a file, plus just enough MIME to
//! read the messages back. Never skipped: when Python or the installation fails, the test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;

/// The virtualenv's Python, set up once per test process.
fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/setup.sh");
        let out = Command::new("bash").arg(&script).output().expect("bash runs tests/smtp/setup.sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "tests/smtp/setup.sh failed ({}): it needs python3 with venv and the Python package index.\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout.lines().find_map(|l| l.strip_prefix("python=")).expect("setup.sh prints python=PATH").into()
    })
}

pub struct Smtp {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    /// Start `aiosmtpd` on a free loopback port and wait until it accepts connections.
    pub async fn start() -> Smtp {
        let python = tokio::task::spawn_blocking(python).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        for _attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut child = Command::new(python)
                .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "outbox.Outbox"])
                .arg(dir.path())
                .env("PYTHONPATH", Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the virtualenv's python starts");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    let mut err = String::new();
                    use std::io::Read;
                    child.stderr.take().unwrap().read_to_string(&mut err).ok();
                    if err.contains("in use") {
                        break; // port raced away: try another
                    }
                    panic!("aiosmtpd exited ({status}): {err}");
                }
                if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    return Smtp { port, dir, child };
                }
                assert!(Instant::now() < deadline, "aiosmtpd did not listen on 127.0.0.1:{port} within 20s");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("could not start aiosmtpd on a free port");
    }

    /// `mail.smtp_url` for this server (plain SMTP: aiosmtpd offers no STARTTLS here).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<Mail> {
        read_dir_mails(self.dir.path())
    }

    /// The first message to `to` whose subject contains `subject`, waiting up to 10 s.
    pub async fn wait_for(&self, to: &str, subject: &str) -> Mail {
        wait_for_in(self.dir.path(), to, subject).await
    }
}

pub fn read_dir_mails(dir: &Path) -> Vec<Mail> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    files.sort();
    files.iter().map(|p| Mail::parse(&std::fs::read(p).unwrap(), p.clone())).collect()
}

pub async fn wait_for_in(dir: &Path, to: &str, subject: &str) -> Mail {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(m) = read_dir_mails(dir).into_iter().find(|m| m.to.contains(to) && m.subject.contains(subject)) {
            return m;
        }
        assert!(Instant::now() < deadline, "no mail to {to} with subject containing {subject:?} within 10s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A received message, decoded enough to assert on.
#[derive(Debug, Clone)]
pub struct Mail {
    pub path: PathBuf,
    pub headers: Vec<(String, String)>,
    pub to: String,
    pub from: String,
    pub subject: String,
    /// The decoded `text/plain` part.
    pub text: String,
    /// The decoded `text/html` part.
    pub html: String,
}

impl Mail {
    pub fn parse(raw: &[u8], path: PathBuf) -> Mail {
        let raw = String::from_utf8_lossy(raw).replace("\r\n", "\n");
        let (headers, body) = split_headers(&raw);
        let get = |name: &str| {
            headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).unwrap_or_default()
        };
        let mut text = String::new();
        let mut html = String::new();
        collect_parts(&headers, body, &mut text, &mut html);
        Mail { path, to: get("To"), from: get("From"), subject: get("Subject"), text, html, headers }
    }

    /// The token in the first link of the text part that starts with `prefix`.
    pub fn token_after(&self, prefix: &str) -> String {
        let start = self.text.find(prefix).unwrap_or_else(|| panic!("no {prefix:?} in the mail text:\n{}", self.text));
        self.text[start + prefix.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }
}

fn split_headers(raw: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    (headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map_or("", |(_, v)| v.as_str())
}

fn collect_parts(headers: &[(String, String)], body: &str, text: &mut String, html: &mut String) {
    let ctype = header(headers, "Content-Type").to_ascii_lowercase();
    if ctype.starts_with("multipart/") {
        let raw_ct = header(headers, "Content-Type");
        let boundary = raw_ct
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary=").map(|b| b.trim_matches('"').to_owned()))
            .expect("multipart boundary");
        let delim = format!("--{boundary}");
        for part in body.split(&delim).skip(1) {
            if part.starts_with("--") {
                break;
            }
            let part = part.strip_prefix('\n').unwrap_or(part);
            let (h, b) = split_headers(part);
            collect_parts(&h, b, text, html);
        }
        return;
    }
    let decoded = match header(headers, "Content-Transfer-Encoding").to_ascii_lowercase().as_str() {
        "quoted-printable" => quoted_printable(body),
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            String::from_utf8_lossy(&base64::engine::general_purpose::STANDARD.decode(compact).unwrap()).into_owned()
        }
        _ => body.to_owned(),
    };
    if ctype.starts_with("text/html") {
        html.push_str(&decoded);
    } else if ctype.is_empty() || ctype.starts_with("text/plain") {
        text.push_str(&decoded);
    }
}

fn quoted_printable(s: &str) -> String {
    let s = s.replace("=\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len() + 1
            && let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
