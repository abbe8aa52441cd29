//! Batched datagram I/O: `recvmmsg` takes every query waiting on the socket
//! (up to [`BATCH`]) in one system call, `sendmmsg` sends their answers in
//! one more. The buffers are allocated once per thread and reused.
//!
//! The unsafe code is confined here: it hands the kernel pointers to buffers
//! owned by [`Batch`], rebuilt on every call from `&mut self`, so none
//! outlives the call.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;

use super::{Datagrams, ErrorLog, MAX_QUERY};

/// Datagrams taken per system call. More than a busy socket holds between
/// two calls on loopback; enough to amortise the call.
///
/// The load bench's ceiling (`benches/load/ceiling.rs`) copies this loop
/// (batch, looks, flags) to measure it without DNS work: change both.
pub const BATCH: usize = 32;

/// Looks without waiting that a loop takes before it sleeps in `recvmmsg`,
/// after a batch of two or more queries (they were queueing: the socket is
/// busy), giving up the core (`sched_yield`) after each look that finds
/// nothing. On a busy socket the next query is a few microseconds away;
/// sleeping costs a context switch here and a wakeup (on a VM, an interrupt
/// between cores) in whoever sends it. A loop that takes one query at a time
/// sleeps at once: looking after every batch cost 11–15 % more CPU per
/// query at 20 000 queries/s, where queries rarely queue. Measured in
/// docs/performance.md.
const LOOKS_BEFORE_SLEEP: usize = 2;

pub struct Batch {
    requests: Box<[[u8; MAX_QUERY]]>,
    lens: [usize; BATCH],
    truncated: [bool; BATCH],
    peers: Box<[libc::sockaddr_storage]>,
    peer_lens: [libc::socklen_t; BATCH],
    responses: Vec<Vec<u8>>,
    answered: [bool; BATCH],
    errors: ErrorLog,
    /// The last receive took more than one datagram: queries are queueing,
    /// look again before sleeping.
    busy: bool,
}

impl Batch {
    pub fn new() -> Batch {
        // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
        let empty_peer: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
        Batch {
            requests: vec![[0u8; MAX_QUERY]; BATCH].into_boxed_slice(),
            lens: [0; BATCH],
            truncated: [false; BATCH],
            peers: vec![empty_peer; BATCH].into_boxed_slice(),
            peer_lens: [0; BATCH],
            responses: (0..BATCH).map(|_| Vec::with_capacity(MAX_QUERY)).collect(),
            answered: [false; BATCH],
            errors: ErrorLog,
            busy: false,
        }
    }
}

impl Datagrams for Batch {
    /// Waits for at least one datagram and takes all that are waiting (up to
    /// [`BATCH`]); returns how many. Errors that a retry can cure (signals,
    /// memory pressure) give 0; so do others, logged, after a short pause,
    /// so that a sick socket never spins a core.
    fn receive(&mut self, socket: &std::net::UdpSocket) -> io::Result<usize> {
        let mut iovecs: [libc::iovec; BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: mmsghdr is plain data; all zeroes is a valid value.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
        for i in 0..BATCH {
            iovecs[i].iov_base = self.requests[i].as_mut_ptr().cast();
            iovecs[i].iov_len = MAX_QUERY;
            let h = &mut headers[i].msg_hdr;
            h.msg_name = (&mut self.peers[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut iovecs[i];
            h.msg_iovlen = 1;
        }
        // After a busy batch, look again a few times, giving up the core in
        // between, before sleeping: see [`LOOKS_BEFORE_SLEEP`].
        let mut looks = if self.busy { LOOKS_BEFORE_SLEEP } else { 0 };
        let n = loop {
            let flags = if looks > 0 {
                libc::MSG_DONTWAIT
            } else {
                libc::MSG_WAITFORONE
            };
            // SAFETY: every pointer in `headers` points into `self` or
            // `iovecs`, both alive and exclusively borrowed for the whole
            // call; lengths are those of the buffers.
            let n = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    headers.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    flags,
                    std::ptr::null_mut(),
                )
            };
            if n > 0 || looks == 0 {
                break n;
            }
            // Nothing yet (or an error, which the sleeping call will meet
            // and report): let a sender run, then look again.
            looks -= 1;
            // SAFETY: no arguments, no memory; it cannot fail on Linux.
            unsafe { libc::sched_yield() };
        };
        self.busy = n > 1;
        if n < 0 {
            let error = io::Error::last_os_error();
            // The socket's read timeout: the loop looks at its stop flag.
            let timed_out = error.kind() == io::ErrorKind::WouldBlock;
            if error.kind() != io::ErrorKind::Interrupted && !timed_out {
                self.errors.note("receive", &error);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            return Ok(0);
        }
        let n = n as usize;
        for (i, header) in headers.iter().enumerate().take(n) {
            self.lens[i] = header.msg_len as usize;
            self.truncated[i] = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.peer_lens[i] = header.msg_hdr.msg_namelen;
            self.answered[i] = false;
        }
        Ok(n)
    }

    /// The query in slot `i` (empty if it was too large to read whole) and
    /// the buffer its answer goes in.
    fn slot(&mut self, i: usize) -> (&[u8], &mut Vec<u8>) {
        let request: &[u8] = if self.truncated[i] {
            &[]
        } else {
            &self.requests[i][..self.lens[i].min(MAX_QUERY)]
        };
        (request, &mut self.responses[i])
    }

    /// The address the query in slot `i` came from (for access control).
    fn peer(&self, i: usize) -> Option<std::net::IpAddr> {
        let storage = self.peers.get(i)?;
        match libc::c_int::from(storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a sockaddr_in (family AF_INET) into
                // this sockaddr_storage, which is large and aligned enough.
                let sin = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                Some(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).into())
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for a sockaddr_in6 (family AF_INET6).
                let sin6 = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                Some(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr).into())
            }
            _ => None,
        }
    }

    fn set_answered(&mut self, i: usize, answered: bool) {
        self.answered[i] = answered;
    }

    /// Sends the answers of the first `received` slots that have one, each
    /// to the address its query came from.
    fn send(&mut self, socket: &std::net::UdpSocket, received: usize) {
        let mut iovecs: [libc::iovec; BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: mmsghdr is plain data; all zeroes is a valid value.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
        let mut count = 0;
        for i in (0..received.min(BATCH)).filter(|&i| self.answered[i]) {
            iovecs[count].iov_base = self.responses[i].as_mut_ptr().cast();
            iovecs[count].iov_len = self.responses[i].len();
            let h = &mut headers[count].msg_hdr;
            h.msg_name = (&mut self.peers[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = self.peer_lens[i];
            count += 1;
        }
        for i in 0..count {
            headers[i].msg_hdr.msg_iov = &mut iovecs[i];
            headers[i].msg_hdr.msg_iovlen = 1;
        }
        let mut start = 0;
        while start < count {
            // SAFETY: as in `receive`: the pointers stay valid for the call.
            let sent = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    headers[start..].as_mut_ptr(),
                    (count - start) as libc::c_uint,
                    0,
                )
            };
            if sent < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The first message failed (an unreachable peer, a full
                // buffer): drop it, send the rest.
                self.errors.note("send", &error);
                start += 1;
            } else {
                start += (sent as usize).max(1);
            }
        }
    }
}
