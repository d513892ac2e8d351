//! Refusals: a node that does not allow shell jobs, and bad args (failed at
//! once, without retries, with a message naming the field).

use rota::{EnqueueOpts, ErrorKind, JobState, ValidationError};
use rota_shell::{DISABLED_MESSAGE, ShellArgs, ShellOptions};
use serde_json::json;

use crate::common::{Harness, allowed};

fn five_attempts() -> EnqueueOpts {
    EnqueueOpts {
        max_attempts: Some(5),
        ..EnqueueOpts::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_allow_shell_refuses() {
    let h = Harness::new(ShellOptions::default()).await;
    let id = h
        .enqueue(json!({"command": ["echo", "hello"]}), five_attempts())
        .await;
    let job = h
        .client
        .wait(id, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.attempt, 1, "fatal: not retried");
    assert_eq!(job.errors[0].kind, ErrorKind::Fatal);
    assert_eq!(job.errors[0].message, DISABLED_MESSAGE);
    assert_eq!(job.output, None);
    assert_eq!(job.exit_code, None);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_args_fail_at_once_naming_the_field() {
    let h = Harness::new(allowed()).await;
    let cases = [
        (json!({"command": ["echo"], "script": "echo"}), "command"),
        (json!({"command": []}), "command"),
        (json!({"script": "echo", "colour": "red"}), "colour"),
        (json!({"script": "echo", "env": {"BAD-NAME": "x"}}), "env"),
        (json!({"script": "echo", "timeout": "forever"}), "timeout"),
    ];
    // NUL bytes never reach a worker: the engine refuses them at enqueue
    // (PostgreSQL cannot store them), and `ShellArgs::validate` names them.
    let nul = json!({"command": ["echo", "a\u{0}b"]});
    assert!(matches!(
        h.client
            .enqueue_many(vec![rota::JobRequest::raw(
                rota_shell::KIND,
                nul.clone(),
                five_attempts()
            )])
            .await,
        Err(rota::Error::Invalid(_))
    ));
    assert_eq!(ShellArgs::parse(&nul).unwrap_err().field, "command[1]");
    let mut ids = Vec::new();
    for (args, _) in &cases {
        ids.push(h.enqueue(args.clone(), five_attempts()).await);
    }
    for ((args, field), id) in cases.iter().zip(ids) {
        let job = h
            .client
            .wait(id, std::time::Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(job.state, JobState::Failed, "{args}");
        assert_eq!(job.attempt, 1, "{args}");
        let e = &job.errors[0];
        assert_eq!(e.kind, ErrorKind::Fatal, "{args}");
        assert!(
            e.message.starts_with("bad shell job args: ")
                && e.message.contains(&format!("invalid {field}:")),
            "{args}: {}",
            e.message
        );
        assert_eq!(job.exit_code, None, "nothing ran");
    }
    h.shutdown().await;
}

#[test]
fn validate_names_the_field() {
    fn field(r: Result<(), ValidationError>) -> String {
        r.unwrap_err().field
    }
    let mut both = ShellArgs::command(["echo"]);
    both.script = Some("echo".into());
    assert_eq!(field(both.validate()), "command");
    assert_eq!(field(ShellArgs::default().validate()), "command");
    assert_eq!(
        field(ShellArgs::command(Vec::<String>::new()).validate()),
        "command"
    );
    assert_eq!(field(ShellArgs::command(["a\0"]).validate()), "command[0]");
    assert_eq!(field(ShellArgs::script("a\0").validate()), "script");
    let mut env = ShellArgs::script("env");
    env.env.insert("1X".into(), "v".into());
    assert_eq!(field(env.validate()), "env");
    let mut cwd = ShellArgs::script("pwd");
    cwd.cwd = Some("relative/dir".into());
    assert_eq!(field(cwd.validate()), "cwd");
    assert!(ShellArgs::script("echo hi").validate().is_ok());

    // Decoding too: unknown fields and wrong types are named.
    let e = ShellArgs::parse(&json!({"script": "x", "shell": "bash"})).unwrap_err();
    assert_eq!(e.field, "shell");
    assert!(e.to_string().contains("unknown field"), "{e}");
    let e = ShellArgs::parse(&json!({"script": ["x"]})).unwrap_err();
    assert_eq!(e.field, "script");
}
