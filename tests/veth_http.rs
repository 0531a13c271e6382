//! `xdptcp http` on a 2-queue veth against real clients in the kernel's
//! namespace: curl (keep-alive, HEAD, POST /echo, chunked upload,
//! /bytes/10000000 checked byte for byte, --root files and traversal), a
//! raw-socket client (pipelined and malformed requests: each gets its
//! status and a clean close), and wrk for a few seconds with no socket
//! errors.

mod veth_common;
use veth_common as common;
use veth_common::netns::{self, Harness};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_xdptcp");
const STACK: &str = "198.18.0.2:80";

/// A child process killed on drop (if a test fails half-way).
struct Proc(Option<Child>);

impl Proc {
    fn stop(mut self) -> (i32, String) {
        netns::stop(self.0.take().expect("running"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_http(h: &Harness, extra: &[&str]) -> Proc {
    let iface = format!("{}=198.18.0.2/24", h.iface());
    let child = Command::new("ip")
        .args(["netns", "exec", &h.nss(), BIN, "http", "--iface", &iface])
        .args(["--duration", "120"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning xdptcp http");
    let p = Proc(Some(child));
    assert!(
        netns::wait_listening(&h.nsk(), STACK),
        "xdptcp http did not start listening"
    );
    p
}

fn ok(o: &Output, what: &str) -> Vec<u8> {
    assert!(
        o.status.success(),
        "{what}: {:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout.clone()
}

/// Raw request(s) from the kernel's namespace; everything read until the
/// server closes (None if it did not close within 10 s, or reset).
fn raw(nsk: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let ns = nsk.to_string();
    let bytes = bytes.to_vec();
    std::thread::spawn(move || {
        netns::enter(&ns);
        let addr: SocketAddr = STACK.parse().unwrap();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&bytes).map_err(|e| format!("write: {e}"))?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)
            .map_err(|e| format!("read after {} bytes: {e}", out.len()))?;
        Ok(out)
    })
    .join()
    .unwrap()
}

/// The status codes of the responses in `bytes`, in order.
fn statuses(bytes: &[u8], heads: &[bool]) -> Vec<u16> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut h = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut h);
        let Ok(httparse::Status::Complete(n)) = r.parse(rest) else {
            panic!("bad response: {:?}", String::from_utf8_lossy(rest));
        };
        let len: usize = r
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
            .unwrap();
        let len = if heads.get(out.len()) == Some(&true) {
            0
        } else {
            len
        };
        out.push(r.code.unwrap());
        rest = &rest[n + len..];
    }
    out
}

#[test]
fn http_against_curl_raw_sockets_and_wrk() {
    let t = "http_against_curl_raw_sockets_and_wrk";
    if !common::require(common::is_root(), t, "needs root for namespaces and AF_XDP") {
        return;
    }
    let h = Harness::up("hc", 2, &[]);
    let srv = start_http(&h, &[]);
    let k = |args: &[&str]| h.run("k", args);
    let dir = std::env::temp_dir().join(format!("xdptcp-veth-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // Keep-alive: two requests, one connection.
    let o = k(&[
        "curl",
        "-sv",
        "-m",
        "10",
        "http://198.18.0.2/",
        "http://198.18.0.2/",
    ]);
    assert_eq!(
        ok(&o, "curl keep-alive"),
        b"Hello from xdptcp\nHello from xdptcp\n"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Re-using existing connection"), "{err}");
    assert!(
        err.contains("< Server: xdptcp") && err.contains("< Date: "),
        "{err}"
    );

    // HEAD.
    let o = k(&["curl", "-sI", "-m", "10", "http://198.18.0.2/bytes/1000"]);
    let head = String::from_utf8(ok(&o, "curl -I")).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Length: 1000"), "{head}");

    // POST /echo, by Content-Length and chunked.
    let body: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = dir.join("body");
    std::fs::write(&file, &body).unwrap();
    let at = format!("@{}", file.display());
    let o = k(&[
        "curl",
        "-s",
        "-m",
        "20",
        "--data-binary",
        &at,
        "http://198.18.0.2/echo",
    ]);
    assert!(
        ok(&o, "curl POST") == body,
        "POST /echo returned other bytes"
    );
    let o = k(&[
        "curl",
        "-s",
        "-m",
        "20",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &at,
        "http://198.18.0.2/echo",
    ]);
    assert!(
        ok(&o, "curl chunked POST") == body,
        "chunked POST /echo returned other bytes"
    );

    // 10 MB, byte for byte.
    let o = k(&["curl", "-s", "-m", "60", "http://198.18.0.2/bytes/10000000"]);
    let got = ok(&o, "curl /bytes/10000000");
    assert_eq!(got.len(), 10_000_000);
    if let Some(i) = got
        .iter()
        .enumerate()
        .position(|(i, b)| *b != b'a' + (i % 26) as u8)
    {
        panic!("/bytes/10000000 differs at byte {i}");
    }

    // Pipelined requests in one write: answered in order.
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\n\
GET /bytes/5 HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi\
GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let got = raw(&h.nsk(), req).unwrap();
    assert_eq!(statuses(&got, &[false, true]), [200; 5]);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("\r\n\r\nabcde") && text.contains("\r\n\r\nhi"),
        "{text}"
    );

    // Malformed and refused requests: the status, then a clean close (a
    // FIN, so read_to_end ends without a reset).
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "y".repeat(10_000)
    );
    for (req, want) in [
        ("GARBAGE\r\n\r\n".to_string(), 400),
        ("GET / HTTP/1.1\r\n\r\n".into(), 400),
        ("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n".into(), 404),
        (
            "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx".into(),
            405,
        ),
        (
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n".into(),
            413,
        ),
        (big, 431),
    ] {
        let got = raw(&h.nsk(), req.as_bytes()).unwrap_or_else(|e| panic!("{want}: {e}"));
        assert_eq!(statuses(&got, &[]), [want], "{req:.40}");
    }

    // wrk: a few seconds, no socket errors, no non-2xx.
    let o = k(&[
        "wrk",
        "-t1",
        "-c32",
        "-d3",
        "--timeout",
        "5",
        "http://198.18.0.2/",
    ]);
    let out = String::from_utf8(ok(&o, "wrk")).unwrap();
    eprintln!("{out}");
    assert!(!out.contains("Socket errors"), "{out}");
    assert!(!out.contains("Non-2xx"), "{out}");
    let rps: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(rps > 1000.0, "{rps}");

    let (code, err) = srv.stop();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("requests on"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn http_serves_files_under_root_only() {
    let t = "http_serves_files_under_root_only";
    if !common::require(common::is_root(), t, "needs root for namespaces and AF_XDP") {
        return;
    }
    let base = std::env::temp_dir().join(format!("xdptcp-veth-root-{}", std::process::id()));
    let root = base.join("www");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("index.html"), b"<h1>home</h1>\n").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("sub/big.bin"), &big).unwrap();
    std::fs::write(base.join("secret"), b"do not serve").unwrap();
    let h = Harness::up("hr", 2, &[]);
    let srv = start_http(&h, &["--root", root.to_str().unwrap()]);
    let k = |args: &[&str]| h.run("k", args);
    let o = k(&["curl", "-s", "-m", "10", "http://198.18.0.2/"]);
    assert_eq!(ok(&o, "index"), b"<h1>home</h1>\n");
    let o = k(&["curl", "-s", "-m", "30", "http://198.18.0.2/sub/big.bin"]);
    assert!(ok(&o, "big file") == big, "the file came back different");
    for path in [
        "/../secret",
        "/%2e%2e/secret",
        "/sub/../../secret",
        "/missing",
    ] {
        let url = format!("http://198.18.0.2{path}");
        let o = k(&[
            "curl",
            "-s",
            "--path-as-is",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-m",
            "10",
            &url,
        ]);
        assert_eq!(ok(&o, path), b"404", "{path}");
    }
    let (code, err) = srv.stop();
    assert_eq!(code, 0, "{err}");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn http_user_errors_exit_2() {
    for args in [
        &["http", "--iface", "x"][..],
        &["http", "--iface", "a=198.18.0.2/24", "--idle-timeout", "0"],
        &[
            "http",
            "--iface",
            "a=198.18.0.2/24",
            "--root",
            "/nonexistent/dir",
        ],
        &["http", "--iface", "a=198.18.0.2/24", "--port", "0"],
    ] {
        let o = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}
