//! Commands that run to the end: output, exit codes, retries, stdin, env,
//! progress, the output cap, users.

use std::time::{Duration, Instant};

use rota::{BackoffPolicy, Config, EnqueueOpts, JobState};
use rota_core::output::CUT_MARKER;
use rota_shell::ShellWorker;
use serde_json::json;

use crate::common::{Harness, alive, allowed, fast_config, pid};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_hello_succeeds_with_output_and_exit_code() {
    let h = Harness::new(allowed()).await;
    let job = h.run(json!({"command": ["echo", "hello"]})).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.errors);
    assert_eq!(job.output.as_deref(), Some("hello\n"));
    assert_eq!(job.exit_code, Some(0));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_is_not_interpolated_by_a_shell() {
    let h = Harness::new(allowed()).await;
    let job = h
        .run(json!({"command": ["echo", "$HOME; `id` $(id) *"]}))
        .await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.output.as_deref(), Some("$HOME; `id` $(id) *\n"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_zero_exit_is_retried_then_fails_with_the_exit_code() {
    let config = Config {
        backoff: BackoffPolicy {
            initial_interval: Duration::from_millis(50),
            jitter: 0.0,
            ..BackoffPolicy::default()
        },
        ..fast_config()
    };
    let h = Harness::with_config(allowed(), config).await;
    let id = h
        .enqueue(
            json!({"script": "echo \"attempt $ROTA_JOB_ATTEMPT\"; echo oops >&2; exit 3"}),
            EnqueueOpts {
                max_attempts: Some(2),
                ..EnqueueOpts::default()
            },
        )
        .await;
    let job = h.client.wait(id, Duration::from_secs(20)).await.unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.attempt, 2);
    assert_eq!(job.exit_code, Some(3));
    assert_eq!(job.errors.len(), 2, "{:?}", job.errors);
    for e in &job.errors {
        assert_eq!(e.kind, rota::ErrorKind::Error);
        assert_eq!(e.message, "exit code 3");
    }
    let out = job.output.unwrap();
    assert!(
        out.contains("attempt 2\n") && out.contains("oops\n"),
        "{out:?}"
    );

    // One attempt: failed at once, exit code recorded.
    let job = h.run(json!({"command": ["sh", "-c", "exit 7"]})).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.exit_code, Some(7));
    assert_eq!(job.errors[0].message, "exit code 7");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_gets_stdin_env_cwd_and_a_clean_environment() {
    let h = Harness::new(allowed()).await;
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().canonicalize().unwrap().display().to_string();
    let job = h
        .run(json!({
            "script": "read first; echo \"got $first from $WHO\"; cat; pwd; echo \"job=$ROTA_JOB_ID\"; \
                       if [ -n \"$CARGO_MANIFEST_DIR\" ]; then echo leaked; fi",
            "stdin": "hi there\nrest of it\n",
            "env": {"WHO": "tester"},
            "cwd": cwd,
        }))
        .await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.errors);
    assert_eq!(
        job.output.unwrap(),
        format!(
            "got hi there from tester\nrest of it\n{cwd}\njob={}\n",
            job.id
        )
    );

    // Without stdin, standard input is empty (/dev/null), not inherited.
    let job = h.run(json!({"command": ["wc", "-c"]})).await;
    assert_eq!(job.output.unwrap().trim(), "0");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_lines_are_checked_in_while_running_and_kept_in_output() {
    let h = Harness::new(allowed()).await;
    let id = h
        .enqueue(
            json!({"script": "echo '::progress:: {\"step\": 1}'; sleep 1.5; \
                              echo 'between'; printf '::progress:: {\"step\": 2, \"of\": 2}\\n'"}),
            crate::common::once(),
        )
        .await;
    // Visible while the job still runs.
    let t0 = Instant::now();
    loop {
        let j = h.client.get(id).await.unwrap();
        if j.progress == Some(json!({"step": 1})) {
            assert_eq!(j.state, JobState::Running);
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "no progress seen: {j:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let job = h.client.wait(id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.progress, Some(json!({"step": 2, "of": 2})));
    assert_eq!(
        job.output.unwrap(),
        "::progress:: {\"step\": 1}\nbetween\n::progress:: {\"step\": 2, \"of\": 2}\n"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_output_is_capped_with_head_tail_and_cut_marker() {
    let cap = 64 * 1024;
    let config = Config {
        output_cap: cap,
        ..fast_config()
    };
    let h = Harness::with_config(allowed(), config).await;
    let job = h
        .run(json!({"script": "echo START; head -c 52428800 /dev/zero | tr '\\0' a; echo; echo END"}))
        .await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.errors);
    let out = job.output.unwrap();
    assert!(
        out.len() <= cap + CUT_MARKER.len(),
        "stored {} bytes",
        out.len()
    );
    assert!(out.contains(CUT_MARKER));
    assert!(out.starts_with("START\naaaa"), "{:?}", &out[..20]);
    assert!(out.ends_with("aaaa\nEND\n"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_program_and_signal_death_record_shell_exit_codes() {
    let h = Harness::new(allowed()).await;
    let job = h
        .run(json!({"command": ["rota-shell-no-such-program"]}))
        .await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.exit_code, Some(127));

    let job = h.run(json!({"script": "kill -9 $$"})).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.exit_code, Some(137));
    assert!(
        job.errors[0].message.contains("signal 9"),
        "{:?}",
        job.errors
    );

    let job = h
        .run(json!({"script": "true", "cwd": "/rota-shell-no-such-dir"}))
        .await;
    assert_eq!(job.state, JobState::Failed);
    assert!(
        job.errors[0].message.contains("/rota-shell-no-such-dir"),
        "{:?}",
        job.errors
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_left_behind_by_a_finished_command_are_terminated() {
    let h = Harness::new(allowed()).await;
    let t0 = Instant::now();
    let job = h
        .run(json!({"script": "sleep 100 & echo $!; echo done"}))
        .await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.errors);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    let out = job.output.unwrap();
    let sleeper = pid(out.lines().next().unwrap());
    assert!(!alive(sleeper), "background sleep {sleeper} survived");
    assert!(out.ends_with("done\n"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_switch_needs_root_and_an_existing_user() {
    let h = Harness::new(allowed()).await;
    let job = h
        .run(json!({"command": ["id", "-u"], "user": "nobody"}))
        .await;
    if nix::unistd::geteuid().is_root() {
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        assert_eq!(job.state, JobState::Succeeded, "{:?}", job.errors);
        assert_eq!(job.output.unwrap().trim(), nobody.uid.to_string());
        let job = h
            .run(json!({"command": ["true"], "user": "rota_no_such_user"}))
            .await;
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.errors[0].kind, rota::ErrorKind::Fatal);
        assert!(job.errors[0].message.contains("no such user"));
    } else {
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.errors[0].kind, rota::ErrorKind::Fatal);
        assert!(
            job.errors[0]
                .message
                .contains("only allowed when the worker runs as root"),
            "{:?}",
            job.errors
        );
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_carry_the_parent_death_signal_when_setpriv_exists() {
    let worker = ShellWorker::new(allowed());
    let Some(setpriv) = worker.pdeathsig_wrapper() else {
        eprintln!("setpriv with --pdeathsig not available; skipping");
        return;
    };
    let h = Harness::new(allowed()).await;
    let job = h
        .run(json!({"command": [setpriv.display().to_string(), "--dump"]}))
        .await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.errors);
    assert!(
        job.output
            .as_deref()
            .unwrap()
            .contains("Parent death signal: KILL"),
        "{:?}",
        job.output
    );
    h.shutdown().await;
}
