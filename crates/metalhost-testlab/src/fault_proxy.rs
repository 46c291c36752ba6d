//! A TCP proxy on loopback that plays the network faults a real apiserver will not produce on
//! request: every open connection cut at once (a dropped watch, an apiserver restart), new
//! connections closed at once (an apiserver that is down). TLS passes through
//! untouched, so the client still checks the apiserver's own certificate.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running proxy; dropped, it stops accepting and cuts every connection.
#[derive(Debug)]
pub struct FaultProxy {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    target: SocketAddr,
    /// Both ends of every open connection, to cut them.
    open: Mutex<Vec<TcpStream>>,
    refusing: AtomicBool,
    stopped: AtomicBool,
}

impl FaultProxy {
    /// Forwards 127.0.0.1:<new port> to `target` (`127.0.0.1:6443`).
    pub fn start(target: &str) -> FaultProxy {
        let target: SocketAddr = target.parse().expect("target address");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(State {
            target,
            open: Mutex::new(Vec::new()),
            refusing: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&state);
        std::thread::spawn(move || accept(listener, accepting));
        FaultProxy { port, state }
    }

    /// `https://127.0.0.1:PORT`, for a kubeconfig.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Cuts every open connection (both directions); clients see their streams end.
    pub fn drop_connections(&self) {
        for stream in self.state.open.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// While on, each new connection is closed at once (the apiserver looks down).
    pub fn set_refusing(&self, on: bool) {
        self.state.refusing.store(on, Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        // wakes the accept loop so that it sees the stop
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        self.drop_connections();
    }
}

fn accept(listener: TcpListener, state: Arc<State>) {
    for client in listener.incoming() {
        if state.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if state.refusing.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let state = Arc::clone(&state);
        std::thread::spawn(move || forward(client, &state));
    }
}

fn forward(client: TcpStream, state: &State) {
    let Ok(server) = TcpStream::connect_timeout(&state.target, Duration::from_secs(10)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(client_2), Ok(server_2)) = (client.try_clone(), server.try_clone()) else { return };
    {
        let mut open = state.open.lock().unwrap_or_else(|e| e.into_inner());
        open.extend([client.try_clone(), server.try_clone()].into_iter().flatten());
    }
    std::thread::spawn(move || pipe(client_2, server_2));
    pipe(server, client);
}

/// Copies `from` to `to` until either ends, then ends both.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
