//! Spawning the real binaries and stopping them again.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the glance-rs binaries are: `$GLANCE_BIN_DIR`, or the cargo target dir these tests
/// were built in (`cargo build --workspace --all-targets` builds them).
pub fn bin_path(name: &str) -> PathBuf {
    let dir = match std::env::var_os("GLANCE_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().expect("current exe");
            let deps = exe.parent().expect("exe dir");
            // target/debug/deps/<test> or target/debug/<bin>
            if deps.ends_with("deps") { deps.parent().expect("target dir").to_path_buf() } else { deps.to_path_buf() }
        }
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build --workspace --all-targets` first, or set GLANCE_BIN_DIR",
        path.display()
    );
    path
}

/// Runs a command to completion and returns its stdout; panics with its output if it fails.
pub fn run_ok(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program).args(args).stdin(Stdio::null()).output().expect("spawn");
    assert!(
        out.status.success(),
        "{} {:?} failed ({}):\nstdout: {}\nstderr: {}",
        program.display(),
        args,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A free port on 127.0.0.1 (free when asked; the start is retried if it is taken meanwhile).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A running server process, stopped with SIGTERM when dropped.
pub struct Server {
    pub name: String,
    pub port: u16,
    pub config: PathBuf,
    pub log_file: PathBuf,
    output: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// Starts `binary --config-file <config>` where `write_config(port)` writes the config for
    /// a port, and waits until it listens. Like Glance's harness, retries three times on new
    /// ports if the process dies before listening.
    pub async fn start(
        binary: &str,
        dir: &Path,
        log_file: PathBuf,
        mut write_config: impl FnMut(u16) -> PathBuf,
    ) -> Server {
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let config = write_config(port);
            let output = dir.join(format!("{binary}.out"));
            let mut server =
                Server { name: binary.into(), port, config, log_file: log_file.clone(), output, child: None };
            match server.spawn().await {
                Ok(()) => return server,
                Err(e) => {
                    last_error = format!("{e}\n{}", server.logs());
                    server.child = None;
                }
            }
        }
        panic!("{binary} did not start: {last_error}");
    }

    async fn spawn(&mut self) -> Result<(), String> {
        let out = std::fs::File::create(&self.output).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(bin_path(&self.name))
            .arg("--config-file")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| e.to_string())?;
        self.child = Some(child);
        self.wait_listening(Duration::from_secs(15)).await
    }

    async fn wait_listening(&mut self, limit: Duration) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("{} exited with {status} before listening", self.name));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err(format!("{} did not listen on {addr} within {limit:?}", self.name))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("server is running")
    }

    /// Stops the server with SIGTERM and returns its exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// Stops, then starts again on the same port with the same config (SO_REUSEADDR).
    pub async fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn().await {
            panic!("{} did not restart: {e}\n{}", self.name, self.logs());
        }
    }

    /// The log file and the captured stdout/stderr.
    pub fn logs(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "----- {} log ({}) -----\n{}\n----- {} stdout/stderr -----\n{}",
            self.name,
            self.log_file.display(),
            read(&self.log_file),
            self.name,
            read(&self.output)
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}
