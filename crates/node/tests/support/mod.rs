//! Helpers shared by the end-to-end tests: child processes, CLI calls, raw HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use serde_json::Value;

/// The `hibana` binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_hibana");

/// A child process, killed when dropped.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and returns it with the JSON line it prints when ready.
pub(crate) fn start_command(cmd: &mut Command) -> (Proc, Value) {
    let mut child = cmd
        .env("HIBANA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{cmd:?} printed {line:?}: {e}"));
    (Proc(child), info)
}

/// Starts `hibana ARGS` and returns it with the JSON line it prints when ready.
pub(crate) fn start(args: &[&str]) -> (Proc, Value) {
    start_command(Command::new(BIN).args(args))
}

/// Runs `hibana ARGS` to completion, ignoring the caller's node and home settings.
pub(crate) fn hibana(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("HIBANA_RPC")
        .env_remove("HIBANA_HOME")
        .output()
        .expect("run hibana")
}

/// Runs `hibana ARGS`, which must succeed and print JSON.
pub(crate) fn ok_json(args: &[&str]) -> Value {
    let out = hibana(args);
    assert!(
        out.status.success(),
        "hibana {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs `hibana ARGS`, which must fail, without panicking, saying `needle`.
pub(crate) fn fails_with(args: &[&str], needle: &str) {
    let out = hibana(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "hibana {args:?} should fail: {text}");
    assert!(
        text.contains(needle),
        "hibana {args:?}: expected {needle:?} in {text:?}"
    );
    assert!(
        !text.contains("panicked"),
        "hibana {args:?} panicked: {text}"
    );
}

/// One HTTP/1.1 request; returns the status, the headers (lowercased names) and the body.
pub(crate) fn http(
    url: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> (u16, Vec<(String, String)>, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// A POST request (see [`http`]).
pub(crate) fn post(
    url: &str,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> (u16, Vec<(String, String)>, String) {
    http(url, "POST", path, key, body)
}
