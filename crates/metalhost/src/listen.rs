//! Binding the webhook's and the metrics' listening sockets. `[::]` means every address of both
//! families, whatever the system's `bindv6only` default, so the servers answer on single-stack
//! IPv6 clusters (common for bare metal) and IPv4 ones alike; on a host without IPv6 it falls
//! back to `0.0.0.0`.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// The default address of the webhook: every address, both families.
pub const WEBHOOK_DEFAULT: &str = "[::]:9443";

/// A listening socket on `addr` (non-blocking, ready for tokio); `[::]` is dual-stack.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    match bind_exactly(addr) {
        Err(e) if addr.ip().is_unspecified() && addr.is_ipv6() && no_ipv6(&e) => {
            tracing::warn!("IPv6 is not available here ({e}): listening on IPv4 only");
            bind_exactly(SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port())))
        }
        other => other,
    }
}

fn bind_exactly(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The errors of a kernel without IPv6 (or with it disabled).
fn no_ipv6(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    /// `[::]` takes connections on ::1 and on 127.0.0.1 (where the machine has IPv6).
    #[test]
    fn the_unspecified_ipv6_address_answers_both_families() {
        let listener = bind("[::]:0".parse().unwrap()).unwrap();
        let port = listener.local_addr().unwrap().port();
        TcpStream::connect(("127.0.0.1", port)).expect("IPv4 loopback");
        if listener.local_addr().unwrap().is_ipv6() {
            TcpStream::connect(("::1", port)).expect("IPv6 loopback");
        }
    }
}
