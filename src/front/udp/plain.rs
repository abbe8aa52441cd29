//! Portable datagram I/O: one `recv_from` and one `send_to` per query, on
//! every Unix (and selectable on Linux with `udp_io = "plain"`). Safe code
//! only.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use super::{Datagrams, ErrorLog, MAX_QUERY};

pub struct Plain {
    /// One byte more than the largest query, to tell a datagram that did
    /// not fit (`recv_from` cuts it silently).
    request: Box<[u8; MAX_QUERY + 1]>,
    len: usize,
    peer: Option<SocketAddr>,
    response: Vec<u8>,
    answered: bool,
    errors: ErrorLog,
}

impl Plain {
    pub fn new() -> Plain {
        Plain {
            request: Box::new([0; MAX_QUERY + 1]),
            len: 0,
            peer: None,
            response: Vec::with_capacity(MAX_QUERY),
            answered: false,
            errors: ErrorLog,
        }
    }
}

impl Datagrams for Plain {
    fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.answered = false;
        match socket.recv_from(&mut self.request[..]) {
            Ok((len, peer)) => {
                self.len = len;
                self.peer = Some(peer);
                Ok(1)
            }
            Err(error) => {
                // The socket's read timeout: the loop looks at its stop flag.
                let quiet = matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                );
                if !quiet {
                    self.errors.note("receive", &error);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Ok(0)
            }
        }
    }

    fn slot(&mut self, _: usize) -> (&[u8], &mut Vec<u8>) {
        let request: &[u8] = if self.len > MAX_QUERY {
            &[]
        } else {
            &self.request[..self.len]
        };
        (request, &mut self.response)
    }

    fn peer(&self, _: usize) -> Option<IpAddr> {
        self.peer.map(|p| p.ip())
    }

    fn set_answered(&mut self, _: usize, answered: bool) {
        self.answered = answered;
    }

    fn send(&mut self, socket: &UdpSocket, received: usize) {
        let Some(peer) = self.peer.filter(|_| received > 0 && self.answered) else {
            return;
        };
        if let Err(error) = socket.send_to(&self.response, peer) {
            self.errors.note("send", &error);
        }
    }
}
