//! What kube-proxy does for the apiserver's own calls to Services (admission webhooks), for a lab
//! with no nodes: the apiserver's "cluster" egress goes through an HTTP CONNECT proxy on a Unix
//! socket (`scripts/kube` configures it), and this proxy sends each Service address (its
//! ClusterIP and port) to the loopback port of the process playing the Service's pod. The table
//! is filled by the test that plays the kubelet; an address with no route is refused (503), as a
//! Service without ready endpoints is.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running router; dropped, it stops accepting.
#[derive(Debug)]
pub struct ServiceRouter {
    routes: Arc<Mutex<HashMap<String, u16>>>,
    stopped: Arc<AtomicBool>,
    socket: std::path::PathBuf,
}

impl ServiceRouter {
    /// Listens on the Unix socket `socket`.
    pub fn start(socket: &Path) -> ServiceRouter {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).expect("bind the egress socket");
        let routes: Arc<Mutex<HashMap<String, u16>>> = Arc::default();
        let stopped = Arc::new(AtomicBool::new(false));
        let (table, stop) = (Arc::clone(&routes), Arc::clone(&stopped));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let table = Arc::clone(&table);
                std::thread::spawn(move || connect(client, &table));
            }
        });
        ServiceRouter { routes, stopped, socket: socket.to_path_buf() }
    }

    /// Sends `address` (`CLUSTER-IP:PORT`) to 127.0.0.1:`port`.
    pub fn route(&self, address: &str, port: u16) {
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).insert(address.to_string(), port);
    }

    /// Forgets the route of `address`.
    pub fn unroute(&self, address: &str) {
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).remove(address);
    }

    /// Whether `address` has a route.
    pub fn routes(&self, address: &str) -> bool {
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).contains_key(address)
    }
}

impl ServiceRouter {
    /// Stops accepting (its thread ends); called before the socket's directory goes.
    pub fn stop(&self) {
        if !self.stopped.swap(true, Ordering::SeqCst) {
            let _ = UnixStream::connect(&self.socket);
        }
    }
}

impl Drop for ServiceRouter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One CONNECT request: the head is read (bounded, byte by byte so that nothing of the tunnel is
/// read with it), answered, and the tunnel piped.
fn connect(mut client: UnixStream, routes: &Mutex<HashMap<String, u16>>) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while head.len() < 8192 && !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.strip_prefix("CONNECT ").and_then(|l| l.split_whitespace().next());
    let port = target.and_then(|t| routes.lock().unwrap_or_else(|e| e.into_inner()).get(t).copied());
    let Some(server) = port.and_then(|p| TcpStream::connect(("127.0.0.1", p)).ok()) else {
        let _ = client.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").is_err() {
        return;
    }
    let _ = client.set_read_timeout(None);
    let (Ok(mut client_2), Ok(mut server_2)) = (client.try_clone(), server.try_clone()) else { return };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_2, &mut server_2);
        let _ = server_2.shutdown(Shutdown::Write);
    });
    let (mut server, mut client) = (server, client);
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(Shutdown::Both);
}
