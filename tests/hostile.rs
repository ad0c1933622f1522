//! Hostile clients against the real server: a bad client loses only its own connection.
//!
//! While a normal publisher and player stream, many connections send random bytes instead of
//! a handshake, garbage chunks after a valid handshake, a huge declared message, nothing or a
//! byte at a time (slowloris, RTMP and HTTP), and HTTP garbage or oversized heads. Frames must
//! keep flowing, and afterwards a new player must still be served. Every wait is bounded.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use srsd::client::{MediaKind, RtmpClient, RtmpUrl};
use srsd::protocol::rtmp::chunk::encode_first_header;
use srsd::protocol::rtmp::handshake::{ClientHandshake, HandshakeProgress};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(5);
/// How long one attacker may take, whatever the server does.
const ATTACK_LIMIT: Duration = Duration::from_secs(4);

/// xorshift64* with a fixed seed per attacker, so a failure replays (the unit tests' harness
/// lives in the library behind `cfg(test)`, out of reach of integration tests).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn video(key: bool, n: u32) -> Bytes {
    let mut v = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    v.extend_from_slice(&n.to_be_bytes());
    v.resize(600, 0xAB);
    Bytes::from(v)
}

/// Reads until the server closes or `limit` passes; the bytes read.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> usize {
    let mut total = 0;
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(limit, async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            total += n;
        }
    })
    .await;
    total
}

/// A completed handshake (C0C1, S0S1S2, C2) on a fresh connection.
async fn handshaken(addr: SocketAddr, seed: u64) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    let mut fill = |b: &mut [u8]| b.copy_from_slice(&noise(seed, b.len()));
    let (mut hs, c0c1) = ClientHandshake::new(&mut fill, 0);
    s.write_all(&c0c1).await?;
    let mut input = BytesMut::new();
    loop {
        if s.read_buf(&mut input).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        match hs.handle_input(&mut input) {
            Ok(HandshakeProgress::Done { send }) => {
                s.write_all(&send).await?;
                return Ok(s);
            }
            Ok(HandshakeProgress::NeedMore { .. }) => {}
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        }
    }
}

async fn attack(kind: usize, seed: u64, rtmp: SocketAddr, http: SocketAddr) {
    // Errors are expected (the server hangs up); only a hang or a crash would matter.
    let _ = tokio::time::timeout(ATTACK_LIMIT, async {
        match kind {
            // (a) Random bytes instead of a handshake (first byte 3 half the time).
            0 => {
                let mut s = TcpStream::connect(rtmp).await?;
                let mut junk = noise(seed, 4000);
                if seed % 2 == 0 {
                    junk[0] = 3;
                }
                let _ = s.write_all(&junk).await;
                read_until_closed(&mut s, ATTACK_LIMIT).await;
            }
            // (b) A valid handshake, then garbage chunks.
            1 => {
                let mut s = handshaken(rtmp, seed).await?;
                let _ = s.write_all(&noise(seed + 1, 3000)).await;
                read_until_closed(&mut s, ATTACK_LIMIT).await;
            }
            // (c) A valid handshake, then a command message declaring 16 MiB, never sent.
            2 => {
                let mut s = handshaken(rtmp, seed).await?;
                let mut b = BytesMut::new();
                encode_first_header(&mut b, 3, 0, 0xFF_FFFF, 20, 0);
                b.extend_from_slice(&[0x02; 128]);
                s.write_all(&b).await?;
                read_until_closed(&mut s, Duration::from_secs(1)).await;
            }
            // (d) Slowloris on RTMP: connect, then one byte of a valid C0C1 now and then.
            3 => {
                let mut s = TcpStream::connect(rtmp).await?;
                for b in [3u8, 0, 0, 0, 0, 0] {
                    s.write_all(&[b]).await?;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
            // (d) Slowloris on HTTP: a request line one byte at a time, or nothing at all.
            4 => {
                let mut s = TcpStream::connect(http).await?;
                if seed % 2 == 0 {
                    for b in b"GET /live/s.flv HTTP/1.1\r\nHo" {
                        s.write_all(&[*b]).await?;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                } else {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
            // (e) HTTP garbage.
            5 => {
                let mut s = TcpStream::connect(http).await?;
                let _ = s.write_all(&noise(seed, 3000)).await;
                read_until_closed(&mut s, ATTACK_LIMIT).await;
            }
            // (e) An oversized head: one endless header line, then many headers.
            _ => {
                let mut s = TcpStream::connect(http).await?;
                let mut head = b"GET /live/s.flv HTTP/1.1\r\nHost: h\r\nX-Big: ".to_vec();
                head.resize(head.len() + 200_000, b'a');
                head.extend_from_slice(b"\r\n");
                for i in 0..2000 {
                    head.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
                }
                let _ = s.write_all(&head).await;
                let mut answer = [0u8; 64];
                let n = tokio::time::timeout(ATTACK_LIMIT, s.read(&mut answer))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(0);
                let answer = String::from_utf8_lossy(&answer[..n]);
                assert!(
                    n == 0 || answer.starts_with("HTTP/1.1 4"),
                    "an oversized head got {answer:?}"
                );
            }
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
}

async fn player(server: &TestServer) -> RtmpClient {
    let url = RtmpUrl::parse(&server.url("live/hostile")).expect("url");
    let mut c = RtmpClient::connect(&url, T).await.expect("connect");
    c.play(&url.stream, T).await.expect("play");
    c
}

/// Counts video frames until `want` arrived or `limit` passed.
async fn count_video(mut c: RtmpClient, want: usize, limit: Duration) -> usize {
    let mut n = 0;
    let _ = tokio::time::timeout(limit, async {
        while n < want {
            match c.recv().await {
                Ok((MediaKind::Video, _, _)) => n += 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    })
    .await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_lose_only_their_own_connection() {
    let server = start_server("hostile", "").await;
    let rtmp = server.addr;
    let http = server.http.expect("http server");

    let url = RtmpUrl::parse(&server.url("live/hostile")).expect("url");
    let mut publisher = RtmpClient::connect(&url, T).await.expect("connect");
    publisher.publish(&url.stream, T).await.expect("publish");
    let watcher = tokio::spawn(count_video(
        player(&server).await,
        60,
        Duration::from_secs(10),
    ));

    let attackers: Vec<_> = (0..70u64)
        .map(|i| tokio::spawn(attack(i as usize % 7, 0x4057 + i, rtmp, http)))
        .collect();

    // 80 frames at 25 fps while the attackers run.
    for n in 0..80u32 {
        publisher
            .send(MediaKind::Video, n * 40, video(n % 25 == 0, n))
            .await
            .expect("the publisher is not disturbed");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let seen = watcher.await.expect("watcher");
    assert!(
        seen >= 60,
        "the player saw {seen} of 80 frames during the attack"
    );
    for a in attackers {
        // Each attacker is bounded by ATTACK_LIMIT; a panic inside fails here.
        a.await.expect("attacker");
    }

    // The server still accepts and serves a new player.
    let late = tokio::spawn(count_video(
        player(&server).await,
        5,
        Duration::from_secs(10),
    ));
    for n in 80..120u32 {
        publisher
            .send(MediaKind::Video, n * 40, video(n % 25 == 0, n))
            .await
            .expect("publisher after the attack");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        late.await.expect("late player") >= 5,
        "a new player is served"
    );
}
