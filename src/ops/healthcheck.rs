//! `ecs-dns healthcheck`: a tiny HTTP/1.1 client for container health checks
//! (minimal images have no curl). One GET on loopback, bounded in time.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// The address to connect to for a listener bound to `listen`: a wildcard
/// address is reached on loopback.
pub fn target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// GETs `path` from `address`; `Ok` with the status line and body when the
/// status is 200, `Err` with the reason otherwise.
pub fn check(address: SocketAddr, path: &str, timeout: Duration) -> Result<String, String> {
    let address = target(address);
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nUser-Agent: ecs-dns-healthcheck\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send to {address}: {e}"))?;
    let mut response = Vec::new();
    // The ops listener answers these paths in a few hundred bytes.
    stream
        .take(64 * 1024)
        .read_to_end(&mut response)
        .map_err(|e| format!("no response from {address}: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let status_line = text.lines().next().unwrap_or_default().to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_owned())
        .unwrap_or_default();
    let code = status_line.split_whitespace().nth(1).unwrap_or_default();
    if code == "200" {
        Ok(format!("{status_line}: {body}"))
    } else if status_line.is_empty() {
        Err(format!("empty response from {address}"))
    } else {
        Err(format!("{status_line}: {body}"))
    }
}
