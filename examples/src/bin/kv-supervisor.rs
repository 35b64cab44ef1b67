//! Runs a key-value node process and keeps it running: when the node asks
//! for a handover (`<state>/handover` names the next binary) it starts that
//! binary beside the running one, which takes over once the old one exits;
//! when the node exits to restart into a new binary without a handover
//! (exit code 75), it starts the binary named in `<state>/next-binary`; when
//! the node crashes or is killed, it starts the same binary again. The
//! current child's pid is kept in `<state>/node.pid`.
//!
//! Usage: `kv-supervisor BINARY NODE-ARGS...` (the node's `--state DIR` among them).

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode};
use std::time::Duration;

use upshift_examples::node_main::{HANDOVER_FILE, RESTART_EXIT_CODE};

fn main() -> ExitCode {
    upshift::logs::init();
    let mut args = std::env::args().skip(1);
    let Some(mut binary) = args.next().map(PathBuf::from) else {
        eprintln!("error: usage: kv-supervisor BINARY NODE-ARGS...");
        return ExitCode::FAILURE;
    };
    let node_args: Vec<String> = args.collect();
    let Some(state) = node_args
        .iter()
        .position(|a| a == "--state")
        .and_then(|i| node_args.get(i + 1))
    else {
        eprintln!("error: the node arguments need --state DIR");
        return ExitCode::FAILURE;
    };
    let state = PathBuf::from(state);
    // The pid file goes into the state directory before the node creates it.
    if let Err(e) = std::fs::create_dir_all(&state) {
        eprintln!("error: cannot create {}: {e}", state.display());
        return ExitCode::FAILURE;
    }
    let mut crashes = 0;
    let start = |binary: &PathBuf| {
        Command::new(binary)
            .args(&node_args)
            .spawn()
            .inspect_err(|e| eprintln!("error: cannot start {}: {e}", binary.display()))
            .ok()
    };
    // The node being watched; its pid goes where the demo and tests find it.
    let current = |child: Child| {
        let _ = std::fs::write(state.join("node.pid"), child.id().to_string());
        child
    };
    let Some(mut child) = start(&binary).map(current) else {
        return ExitCode::FAILURE;
    };
    // The next binary, started beside the current one on its request.
    let mut successor: Option<Child> = None;
    loop {
        if successor.is_none()
            && let Ok(next) = std::fs::read_to_string(state.join(HANDOVER_FILE))
        {
            let _ = std::fs::remove_file(state.join(HANDOVER_FILE));
            eprintln!(
                "supervisor: starting {} beside the running node",
                next.trim()
            );
            binary = PathBuf::from(next.trim());
            successor = start(&binary);
        }
        let status = match child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(e) => {
                eprintln!("error: waiting for the node: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Handed over: whatever the old process said, the next one runs.
        if let Some(next) = successor.take() {
            child = current(next);
            continue;
        }
        match status.code() {
            Some(0) => return ExitCode::SUCCESS,
            Some(RESTART_EXIT_CODE) => match std::fs::read_to_string(state.join("next-binary")) {
                Ok(next) => {
                    eprintln!("supervisor: restarting into {next}");
                    binary = PathBuf::from(next.trim());
                }
                Err(e) => {
                    eprintln!(
                        "error: the node asked for a restart but {}: {e}",
                        state.join("next-binary").display()
                    );
                    return ExitCode::FAILURE;
                }
            },
            _ => {
                crashes += 1;
                if crashes > 20 {
                    eprintln!("error: the node keeps crashing ({status}); giving up");
                    return ExitCode::FAILURE;
                }
                eprintln!("supervisor: the node stopped ({status}); starting it again");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        child = match start(&binary) {
            Some(next) => current(next),
            None => return ExitCode::FAILURE,
        };
    }
}
