//! Where the local stack is (`scripts/stack up`: Kafka on 127.0.0.1:9092,
//! versitygw S3 on 127.0.0.1:9000), as the variables of `scripts/stack env`
//! say, and how tests share it.
//!
//! Every test on the stack panics (never skips) when it is not reachable.
//! Tests run on parallel threads, and several test processes may share one
//! stack; the few tests that disturb the stack for everybody (a broker
//! stopped, S3 frozen, several workers competing for two cores) take
//! [`exclusive`], all others [`shared`], so that the disruptive ones never
//! overlap another test of any process (a lock file in the stack's folder:
//! [`crate::stack_lock`]). A test waiting for the stack alone lets shared
//! ones start meanwhile (a fair lock would idle every test thread behind it
//! while a long shared test runs).

use crate::stack_lock::{self, Hold, Mode};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::ops::Deref;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Where the local stack is, as the tests see it.
#[derive(Clone, Debug)]
pub struct Stack {
    /// Comma-separated `host:port` list (`KAFKA_BROKERS`).
    pub brokers: String,
    /// S3 endpoint URL (`AWS_ENDPOINT_URL`), e.g. `http://127.0.0.1:9000`.
    pub s3_endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// The bucket `scripts/stack up` creates (`S3_BUCKET`).
    pub bucket: String,
}

/// An environment variable, trimmed, or `default` when unset or blank.
pub fn env_or(key: &str, default: &str) -> String {
    match std::env::var(key) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => default.to_string(),
    }
}

fn answers(hostport: &str) -> bool {
    let addrs: Vec<SocketAddr> = match hostport.to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(_) => return false,
    };
    addrs
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(2)).is_ok())
}

/// `http://host:port/path` -> `host:port` (port 80/443 by scheme if absent).
fn endpoint_hostport(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else if scheme == "https" {
        format!("{authority}:443")
    } else {
        format!("{authority}:80")
    }
}

/// The local stack, checked once per process: panics with "local stack not
/// reachable at …: run `scripts/stack up`" if no listed Kafka broker or the
/// S3 endpoint answers on TCP. Tests take [`shared`] or [`exclusive`]
/// instead, which check the same.
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let s = Stack {
            brokers: env_or("KAFKA_BROKERS", "127.0.0.1:9092"),
            s3_endpoint: env_or("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            access_key: env_or("AWS_ACCESS_KEY_ID", "wordstream"),
            secret_key: env_or("AWS_SECRET_ACCESS_KEY", "wordstream-secret"),
            region: env_or("AWS_REGION", "us-east-1"),
            bucket: env_or("S3_BUCKET", "wordstream"),
        };
        let hint = "run `scripts/stack up` (then `eval \"$(scripts/stack env)\"`)";
        if !s.brokers.split(',').map(str::trim).any(answers) {
            panic!(
                "local stack not reachable at {} (Kafka, KAFKA_BROKERS): {hint}",
                s.brokers
            );
        }
        if !answers(&endpoint_hostport(&s.s3_endpoint)) {
            panic!(
                "local stack not reachable at {} (S3, AWS_ENDPOINT_URL): {hint}",
                s.s3_endpoint
            );
        }
        s
    })
}

/// The stack's folder (`WORDSTREAM_STACK_DIR`, else `<repo>/.stack`).
pub fn stack_dir() -> PathBuf {
    match std::env::var_os("WORDSTREAM_STACK_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => crate::repo().join(".stack"),
    }
}

/// Runs `scripts/stack ARGS` (with this process's environment: the stack
/// dir and ports of the stack under test); panics if it fails.
pub fn stack_script(args: &[&str]) {
    if let Err(e) = try_stack_script(args) {
        panic!("{e}");
    }
}

/// [`stack_script`], returning what went wrong instead of panicking (for
/// destructors: a panic while unwinding aborts the whole test binary).
fn try_stack_script(args: &[&str]) -> Result<(), String> {
    let script = crate::repo().join("scripts/stack");
    match Command::new("bash").arg(&script).args(args).status() {
        Ok(st) if st.success() => Ok(()),
        Ok(st) => Err(format!("scripts/stack {args:?} failed: {st}")),
        Err(e) => Err(format!("running {} {args:?}: {e}", script.display())),
    }
}

fn lock_path() -> PathBuf {
    crate::stack_lock::lock_file(&stack_dir())
}

/// The stack, used alongside other tests (see the module's doc).
pub struct Shared {
    _hold: Hold,
}

/// The stack, used by this test alone (no other test of any process).
pub struct Exclusive {
    _hold: Hold,
}

impl Shared {
    /// Lets go of the stack for `d`, then waits to hold it shared again:
    /// for a test that only waits meanwhile (an outage of its own proxy)
    /// and would otherwise keep the tests that need the stack alone
    /// waiting. They may run in the meantime, so `d` is the least it waits.
    pub async fn idle_for(self, d: Duration) -> Shared {
        drop(self);
        tokio::time::sleep(d).await;
        shared().await
    }
}

/// Waits until no disruptive test runs, then holds the stack shared.
pub async fn shared() -> Shared {
    stack();
    Shared {
        _hold: stack_lock::take(lock_path(), Mode::Shared).await,
    }
}

/// [`shared`], for tests that are not async.
pub fn shared_blocking() -> Shared {
    stack();
    Shared {
        _hold: stack_lock::take_blocking(&lock_path(), Mode::Shared),
    }
}

/// Waits until no other test uses the stack, then holds it.
pub async fn exclusive() -> Exclusive {
    stack();
    Exclusive {
        _hold: stack_lock::take(lock_path(), Mode::Alone).await,
    }
}

impl Deref for Shared {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        stack()
    }
}

impl Deref for Exclusive {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        stack()
    }
}

/// A Kafka broker of the stack, stopped (`scripts/stack stop-broker N`)
/// until [`BrokerDown::start`], or until dropped: a failing test must not
/// leave the stack without its broker.
pub struct BrokerDown {
    node: String,
    restarted: bool,
}

impl BrokerDown {
    /// Stops node `node` (1 on the single node; 1..3 on the cluster).
    pub fn stop(node: i32) -> BrokerDown {
        stack_script(&["stop-broker", &node.to_string()]);
        BrokerDown {
            node: node.to_string(),
            restarted: false,
        }
    }

    /// Starts it again and waits until it is ready.
    pub fn start(&mut self) {
        stack_script(&["start-broker", &self.node]);
        self.restarted = true;
    }
}

impl Drop for BrokerDown {
    fn drop(&mut self) {
        if !self.restarted {
            if let Err(e) = try_stack_script(&["start-broker", &self.node]) {
                eprintln!("restarting the broker after a failed test: {e}");
            }
        }
    }
}

/// The S3 server (versitygw, `<stack dir>/run/s3.pid`) frozen with SIGSTOP:
/// it keeps its connections and data but answers nothing until
/// [`S3Frozen::thaw`] (SIGCONT), or until dropped.
pub struct S3Frozen {
    pid: i32,
    thawed: bool,
}

impl S3Frozen {
    pub fn freeze() -> S3Frozen {
        let pid_file = stack_dir().join("run/s3.pid");
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("{}: {e} (is the stack up?)", pid_file.display()))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()));
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        assert!(
            comm.contains("versitygw"),
            "pid {pid} from {} is {comm:?}, not versitygw",
            pid_file.display()
        );
        crate::procfs::signal(pid as u32, libc::SIGSTOP)
            .unwrap_or_else(|e| panic!("SIGSTOP to versitygw ({pid}): {e}"));
        S3Frozen { pid, thawed: false }
    }

    pub fn thaw(&mut self) {
        crate::procfs::signal(self.pid as u32, libc::SIGCONT)
            .unwrap_or_else(|e| panic!("SIGCONT to versitygw ({}): {e}", self.pid));
        self.thawed = true;
    }
}

impl Drop for S3Frozen {
    fn drop(&mut self) {
        if !self.thawed {
            let _ = crate::procfs::signal(self.pid as u32, libc::SIGCONT);
        }
    }
}
