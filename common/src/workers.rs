//! Glance's process model: `workers = 0` serves from this process; `workers = N` makes this
//! process a supervisor of N worker processes, its direct children, which share the port
//! (SO_REUSEPORT). Workers ignore SIGINT, so an interrupt sent to them causes no respawn storm;
//! a worker that crashes is replaced; SIGTERM to the supervisor stops everything.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const WORKER_ENV: &str = "GLANCE_WORKER_OF";

/// What this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `workers = 0`: serve here.
    Single,
    /// `workers = N`: start and watch N workers.
    Supervisor(usize),
    /// A worker started by a supervisor.
    Worker,
}

pub fn role(workers: usize) -> Role {
    if std::env::var_os(WORKER_ENV).is_some() {
        Role::Worker
    } else if workers == 0 {
        Role::Single
    } else {
        Role::Supervisor(workers)
    }
}

/// Threads per serving process: the cores, shared among the workers.
pub fn threads(workers: usize) -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    cores.checked_div(workers).map_or(cores, |per_worker| per_worker.max(1))
}

/// A listening socket on `host:port` with SO_REUSEADDR (restart on the same port) and, for
/// workers, SO_REUSEPORT (several processes on one port).
pub fn listen(host: &str, port: u16, reuse_port: bool) -> io::Result<TcpListener> {
    let addr: SocketAddr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("cannot resolve {host}")))?;
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// In a worker: ignores SIGINT, and returns when SIGTERM arrives or the supervisor is gone.
pub async fn worker_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let supervisor = std::os::unix::process::parent_id();
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        log::error!("cannot install signal handlers");
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => log::info!("worker {} ignores SIGINT", std::process::id()),
            _ = tick.tick() => if std::os::unix::process::parent_id() != supervisor {
                log::warn!("supervisor {supervisor} is gone; worker {} stops", std::process::id());
                return;
            }
        }
    }
}

/// Runs the supervisor until SIGTERM or SIGINT: starts `count` workers (this binary, same
/// arguments) and replaces those that crash. A worker that exits on its own with an error is
/// not replaced (it would fail again); when none is left, the supervisor stops too.
pub fn supervise(count: usize) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut children: Vec<Child> = Vec::with_capacity(count);
        for _ in 0..count {
            children.push(spawn_worker()?);
        }
        log::info!("started {count} workers: {:?}", children.iter().map(Child::id).collect::<Vec<_>>());
        let mut last_respawn = Instant::now() - Duration::from_secs(10);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = tick.tick() => {}
            }
            let mut replace = 0;
            children.retain_mut(|child| match child.try_wait() {
                Ok(None) => true,
                Ok(Some(status)) => {
                    // Killed by a signal (a crash, or a kill from outside): replace it.
                    if status.code().is_none() {
                        log::error!("worker {} died ({status}); starting another", child.id());
                        replace += 1;
                    } else {
                        log::error!("worker {} exited ({status}); not restarting it", child.id());
                    }
                    false
                }
                Err(_) => false,
            });
            for _ in 0..replace {
                // Never more than one restart a second, whatever happens to the workers.
                let wait = Duration::from_secs(1).saturating_sub(last_respawn.elapsed());
                tokio::time::sleep(wait).await;
                last_respawn = Instant::now();
                children.push(spawn_worker()?);
            }
            if children.is_empty() {
                return Err(io::Error::other("every worker exited"));
            }
        }
        log::info!("stopping {} workers", children.len());
        for child in &children {
            signal_process(child.id(), "TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && children.iter_mut().any(|c| matches!(c.try_wait(), Ok(None))) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for child in &mut children {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        Ok(())
    })
}

fn spawn_worker() -> io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env(WORKER_ENV, std::process::id().to_string())
        .spawn()
}

fn signal_process(pid: u32, signal: &str) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
}
