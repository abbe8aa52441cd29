//! The load bench's ceiling (`scripts/bench`, server `ceiling`): a UDP
//! "DNS server" that does no DNS work. It runs ecs-dns's UDP loop as
//! `src/front/udp/batch.rs` has it (a socket per core on SO_REUSEPORT, a
//! thread each, `recvmmsg`/`sendmmsg` of up to 32 datagrams, two looks
//! without waiting after a busy batch) and answers every query with its own
//! question and a canned answer padded to `--answer-bytes` (the bench gives
//! the mean size of ecs-dns's answers to its queries): no parsing beyond
//! the question, no lookup, no copying but the question.
//!
//! What it answers per second is what this machine's kernel and the load
//! generator beside it allow a server shaped like ecs-dns: the share of it
//! ecs-dns reaches says how much of its time its own work costs, and no
//! server with this loop can be faster than it by more than the noise.
//!
//!     udp_ceiling --listen 127.0.0.1:5300 --answer-bytes 230
//!
//! Linux only (as the batched loop); a bench tool, never shipped.

#[cfg(target_os = "linux")]
use std::mem::MaybeUninit;
#[cfg(target_os = "linux")]
use std::net::SocketAddr;
#[cfg(target_os = "linux")]
use std::os::fd::AsRawFd;

const BATCH: usize = 32;
const LOOKS_BEFORE_SLEEP: usize = 2;
const MAX_QUERY: usize = 512;
const MAX_ANSWER: usize = 1232;

#[cfg(not(target_os = "linux"))]
fn main() {
    usage("Linux only (recvmmsg)")
}

#[cfg(target_os = "linux")]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .unwrap_or_else(|| usage(&format!("{flag} is missing")))
    };
    let listen: SocketAddr = value("--listen")
        .parse()
        .unwrap_or_else(|e| usage(&format!("--listen: {e}")));
    let answer_bytes: usize = value("--answer-bytes")
        .parse()
        .unwrap_or_else(|e| usage(&format!("--answer-bytes: {e}")));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let loops: Vec<_> = (0..threads)
        .map(|_| {
            let socket = bind(listen);
            std::thread::spawn(move || serve(&socket, answer_bytes.min(MAX_ANSWER)))
        })
        .collect();
    println!("udp_ceiling: {threads} loops on {listen}, answers of {answer_bytes} bytes");
    for handle in loops {
        let _ = handle.join();
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("udp_ceiling: {problem}\nusage: udp_ceiling --listen ADDR:PORT --answer-bytes N");
    std::process::exit(2)
}

#[cfg(target_os = "linux")]
fn bind(address: SocketAddr) -> std::net::UdpSocket {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .and_then(|s| s.set_reuse_port(true).map(|()| s))
    .and_then(|s| s.bind(&address.into()).map(|()| s))
    .unwrap_or_else(|e| usage(&format!("cannot bind udp {address}: {e}")));
    socket.into()
}

#[cfg(target_os = "linux")]
fn serve(socket: &std::net::UdpSocket, answer_bytes: usize) {
    let mut queries = vec![[0u8; MAX_QUERY]; BATCH];
    let mut answers = vec![[0u8; MAX_ANSWER]; BATCH];
    // SAFETY: sockaddr_storage and mmsghdr are plain data; zeroes are valid.
    let mut peers: [libc::sockaddr_storage; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
    let mut received: [libc::mmsghdr; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
    let mut sent: [libc::mmsghdr; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
    let mut query_iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; BATCH];
    let mut answer_iov = query_iov;
    let mut busy = false;
    loop {
        for i in 0..BATCH {
            query_iov[i] = libc::iovec {
                iov_base: queries[i].as_mut_ptr().cast(),
                iov_len: MAX_QUERY,
            };
            let h = &mut received[i].msg_hdr;
            h.msg_name = (&raw mut peers[i]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &raw mut query_iov[i];
            h.msg_iovlen = 1;
        }
        let mut looks = if busy { LOOKS_BEFORE_SLEEP } else { 0 };
        let n = loop {
            let flags = if looks > 0 {
                libc::MSG_DONTWAIT
            } else {
                libc::MSG_WAITFORONE
            };
            // SAFETY: the headers point into buffers alive and borrowed
            // for the call, with their lengths.
            let n = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    received.as_mut_ptr(),
                    BATCH as u32,
                    flags,
                    std::ptr::null_mut(),
                )
            };
            if n > 0 || looks == 0 {
                break n;
            }
            looks -= 1;
            // SAFETY: no arguments.
            unsafe { libc::sched_yield() };
        };
        busy = n > 1;
        let mut count = 0;
        for i in 0..usize::try_from(n).unwrap_or(0) {
            let query = &queries[i][..received[i].msg_len as usize];
            let Some(len) = canned_answer(query, answer_bytes, &mut answers[count]) else {
                continue;
            };
            answer_iov[count] = libc::iovec {
                iov_base: answers[count].as_mut_ptr().cast(),
                iov_len: len,
            };
            let h = &mut sent[count].msg_hdr;
            h.msg_name = (&raw mut peers[i]).cast();
            h.msg_namelen = received[i].msg_hdr.msg_namelen;
            h.msg_iov = &raw mut answer_iov[count];
            h.msg_iovlen = 1;
            count += 1;
        }
        let mut done = 0;
        while done < count {
            // SAFETY: as for the receive.
            let m = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    sent[done..].as_mut_ptr(),
                    (count - done) as u32,
                    0,
                )
            };
            if m <= 0 {
                break;
            }
            done += m as usize;
        }
    }
}

/// The query's header and question, flagged as an authoritative answer,
/// then one SOA record for an SOA query (the bench waits for one) or else
/// as many A records as bring it to `answer_bytes`. `None`: no question.
fn canned_answer(query: &[u8], answer_bytes: usize, out: &mut [u8; MAX_ANSWER]) -> Option<usize> {
    let mut end = 12;
    while *query.get(end)? != 0 {
        end += usize::from(query[end]) + 1;
    }
    end += 5;
    let qtype = u16::from_be_bytes([*query.get(end - 4)?, *query.get(end - 3)?]);
    out[..end].copy_from_slice(query.get(..end)?);
    out[2] = 0x84 | (query[2] & 0x01);
    out[3] = 0;
    out[8..12].fill(0);
    let (rtype, rdata): (u16, &[u8]) = if qtype == 6 {
        (
            6,
            &[
                0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1,
            ],
        )
    } else {
        (1, &[10, 0, 0, 1])
    };
    let record = 12 + rdata.len();
    let records = if qtype == 6 {
        1
    } else {
        (answer_bytes.saturating_sub(end) + record / 2) / record
    };
    let records = records.min((MAX_ANSWER - end) / record);
    let mut at = end;
    for _ in 0..records {
        out[at..at + 2].copy_from_slice(&[0xc0, 12]);
        out[at + 2..at + 4].copy_from_slice(&rtype.to_be_bytes());
        out[at + 4..at + 10].copy_from_slice(&[0, 1, 0, 0, 0, 60]);
        out[at + 10..at + 12].copy_from_slice(&(rdata.len() as u16).to_be_bytes());
        out[at + 12..at + record].copy_from_slice(rdata);
        at += record;
    }
    out[6..8].copy_from_slice(&(records as u16).to_be_bytes());
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
        q.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]); // OPT, dropped
        q
    }

    #[test]
    fn answers_keep_the_question_and_come_near_the_size_asked() {
        let mut out = [0u8; MAX_ANSWER];
        let q = query("svc-1.local", 1);
        for asked in [0, 29, 100, 230, 5000] {
            let len = canned_answer(&q, asked, &mut out).unwrap_or(0);
            let question_end = 12 + 13 + 4;
            assert_eq!(out[..2], [0x12, 0x34]);
            assert_eq!(out[2] & 0x84, 0x84, "QR and AA");
            assert_eq!(out[10..12], [0, 0], "no additional records");
            assert_eq!(out[12..question_end], q[12..question_end]);
            let records = usize::from(u16::from_be_bytes([out[6], out[7]]));
            assert_eq!(len, question_end + 16 * records);
            // Within half a record of the size asked, or as many records
            // as fit.
            let near = if asked >= MAX_ANSWER {
                len <= MAX_ANSWER && len + 16 > MAX_ANSWER
            } else {
                len.abs_diff(asked.max(question_end)) <= 8
            };
            assert!(near, "asked {asked}, got {len}");
        }
    }

    #[test]
    fn an_soa_query_gets_one_soa_record_and_no_question_none() {
        let mut out = [0u8; MAX_ANSWER];
        let len = canned_answer(&query("local", 6), 230, &mut out).unwrap_or(0);
        assert_eq!(out[6..8], [0, 1]);
        assert_eq!(out[12 + 7 + 4 + 2..12 + 7 + 4 + 4], [0, 6], "type SOA");
        assert_eq!(len, 12 + 7 + 4 + 12 + 22);
        assert_eq!(canned_answer(&[0; 12], 230, &mut out), None);
        assert_eq!(canned_answer(&query("local", 1)[..15], 230, &mut out), None);
    }
}
