//! Work a test binary does when it exits (the test harness runs no
//! destructors of statics): removing its shared containers, saying what it
//! skipped.

use std::sync::{Mutex, PoisonError};

/// The functions to run at exit, in the order given.
static HOOKS: Mutex<Vec<fn()>> = Mutex::new(Vec::new());

/// Runs `hook` when the process exits normally (not when it is killed).
pub(crate) fn on_exit(hook: fn()) {
    let mut hooks = HOOKS.lock().unwrap_or_else(PoisonError::into_inner);
    if hooks.is_empty() {
        register();
    }
    hooks.push(hook);
}

extern "C" fn run_hooks() {
    let hooks = HOOKS.lock().map(|hooks| hooks.clone()).unwrap_or_default();
    for hook in hooks {
        // A panic must not unwind into C: each hook is run apart.
        let _ = std::panic::catch_unwind(hook);
    }
}

#[allow(unsafe_code)]
fn register() {
    // SAFETY: `atexit` only records a function pointer; `run_hooks` takes
    // no arguments and never unwinds (it catches every panic).
    unsafe {
        libc::atexit(run_hooks);
    }
}
