//! Runs every example program as its users would (`cargo test` builds them first) and checks
//! what it reports, so an example that stops working fails the suite.

use std::path::PathBuf;
use std::process::Command;

/// `target/<profile>/examples/<name>`, next to this test's own `deps` directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    profile_dir.join("examples").join(name)
}

fn run(name: &str, args: &[&str]) -> String {
    let path = example(name);
    let out = Command::new(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e} (built by `cargo test`?)", path.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn rpc_clients_each_get_their_own_answers() {
    let out = run("rpc", &["3", "2000"]);
    for c in 0..3 {
        assert!(
            out.contains(&format!("client {c}: 2000 answers, all its own")),
            "{out}"
        );
    }
    assert!(out.contains("per client: [2000, 2000, 2000]"), "{out}");
    assert!(out.contains("every client got its own answers"), "{out}");
}

#[test]
fn pipeline_runs() {
    let out = run("pipeline", &[]);
    assert!(
        out.contains("sent 1000000 readings through 3 processes"),
        "{out}"
    );
}

#[test]
fn fork_pool_runs() {
    let out = run("fork_pool", &[]);
    assert!(
        out.contains("longest Collatz chain below 100001: 77031"),
        "{out}"
    );
}

#[test]
fn file_log_runs() {
    let out = run("file_log", &[]);
    assert!(out.contains("received 1000 records"), "{out}");
}

#[test]
fn plugin_host_serves_its_plugin_asynchronously() {
    let out = run("plugin_host", &["2000"]);
    assert!(
        out.contains("plugin: 2000 calls answered correctly"),
        "{out}"
    );
    assert!(out.contains("host: served 2000 requests"), "{out}");
}
