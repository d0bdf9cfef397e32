//! `cortex tiles serve`: the binary publishes the ledger's latest checkpoint as a tlog-tiles log
//! (the bytes themselves are tested in `transports/tiles/tests`), and refuses a BLAKE3 ledger.

mod common;

use common::{KillOnDrop, Sandbox};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

fn lines(n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"project\":\"p\",\"action\":\"a.{i}\",\"detail\":{{\"n\":{i}}}}}\n"))
        .collect()
}

/// One HTTP/1.1 GET with a plain socket: `(status, body)`.
fn get(address: &str, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(address).expect("connect to cortex tiles serve");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

#[test]
fn tiles_serve_publishes_the_latest_checkpoint() {
    let sb = Sandbox::new();
    sb.run_with_stdin(
        &["ledger", "append", "--checkpoint-every", "0"],
        &lines(300),
    )
    .ok();
    sb.run(&["ledger", "checkpoint"]).ok();
    let mut child = sb
        .std_command()
        .args(["tiles", "serve", "--port", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cortex tiles serve");
    let stderr = child.stderr.take().unwrap();
    let _child = KillOnDrop(child);
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();

    let (status, note) = get(&address, "/checkpoint");
    assert_eq!(status, 200);
    let note = String::from_utf8(note).unwrap();
    let db = sb.conn();
    let stored: String = db
        .query_row(
            "SELECT signed_note FROM checkpoints ORDER BY tree_size DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(note, stored);
    assert!(note.contains("\n300\n"), "{note}");
    let (status, tile) = get(&address, "/tile/0/001.p/44");
    assert_eq!((status, tile.len()), (200, 44 * 32));
    let (status, bundle) = get(&address, "/tile/entries/000");
    assert_eq!(status, 200);
    // The first entry: u16be length, then its canonical bytes (version tag 0x01, index 0).
    let len = usize::from(u16::from_be_bytes([bundle[0], bundle[1]]));
    assert_eq!(bundle[2], 0x01);
    assert_eq!(&bundle[3..11], &0u64.to_be_bytes());
    assert!(len > 11 && len < bundle.len());
    let (status, body) = get(&address, "/tile/0/002");
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("300 entries"));
}

#[test]
fn tiles_serve_refuses_a_blake3_ledger() {
    let sb = Sandbox::new();
    sb.run_with_stdin(
        &[
            "--hasher",
            "blake3",
            "ledger",
            "append",
            "--checkpoint-every",
            "0",
        ],
        &lines(3),
    )
    .ok();
    sb.run(&["tiles", "serve", "--port", "0"])
        .code(2)
        .err_has("blake3")
        .err_has("SHA-256");
}
