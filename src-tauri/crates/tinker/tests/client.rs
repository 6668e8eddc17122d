//! The client against an in-process fake service, under Tokio's paused
//! clock: retry timing, typed errors, futures, heartbeats and seq_id order
//! are checked in virtual time, so nothing here depends on the machine's
//! speed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use metaclaw_tinker::testing as support;

use std::time::Duration;

use metaclaw_tinker::{
    AdamParams, ApiKey, Datum, FailureCategory, LossFn, RetryPolicy, SamplingParams, TinkerClient,
    TinkerError,
};
use support::{gap, settle, Fake};

fn datum() -> Datum {
    Datum::shifted(&[1, 2, 3], vec![0.0, -0.5], vec![0.0, 1.0]).unwrap()
}

#[tokio::test(start_paused = true)]
async fn rate_limit_waits_for_retry_after() {
    let fake = Fake::start().await;
    fake.fail("create_session", 429, &[("retry-after", "3")]);
    let _session = TinkerClient::connect(fake.config()).await.unwrap();
    let tries = fake.requests_to("create_session");
    assert_eq!(
        tries.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
    // The server's 3 s, not the 0.5 s back-off of a first retry.
    let waited = gap(&tries[0], &tries[1]);
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_millis(3100),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_exponential_backoff() {
    let fake = Fake::start().await;
    let session = TinkerClient::connect(fake.config()).await.unwrap();
    let model = session.create_lora("base", 8).await.unwrap();
    fake.fail("optim_step", 500, &[]);
    fake.fail("optim_step", 502, &[]);
    let out = model.optim_step(AdamParams::new(1e-4)).await.unwrap();
    assert_eq!(out.metrics["grad_norm:mean"], 0.5);

    let tries = fake.requests_to("optim_step");
    assert_eq!(
        tries.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 502, 200]
    );
    // Back-off 0.5 s then 1 s, each shortened by at most 25 % jitter.
    let (first, second) = (gap(&tries[0], &tries[1]), gap(&tries[1], &tries[2]));
    assert!(
        first >= Duration::from_millis(375) && first <= Duration::from_millis(510),
        "{first:?}"
    );
    assert!(
        second >= Duration::from_millis(750) && second <= Duration::from_millis(1010),
        "{second:?}"
    );
    // One logical call: same body (same seq_id) and the same idempotency key.
    assert!(tries.iter().all(|r| r.json == tries[0].json));
    let keys: Vec<_> = tries
        .iter()
        .map(|r| r.header("x-idempotency-key").unwrap().to_string())
        .collect();
    assert!(keys.iter().all(|k| k == &keys[0]));
    assert_eq!(tries[0].json["seq_id"], 1);
    assert!(fake.violations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_become_typed_errors() {
    let fake = Fake::start().await;
    let mut config = fake.config();
    config.retry = RetryPolicy {
        max_retries: 2,
        ..RetryPolicy::default()
    };
    for _ in 0..3 {
        fake.fail("client/config", 503, &[]);
    }
    let err = TinkerClient::connect(config.clone()).await.unwrap_err();
    assert!(
        matches!(err, TinkerError::ServiceUnavailable { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "tinker.unavailable");
    assert!(err.is_transient());

    for _ in 0..3 {
        fake.fail("client/config", 429, &[("retry-after", "1")]);
    }
    let err = TinkerClient::connect(config.clone()).await.unwrap_err();
    assert!(
        matches!(err, TinkerError::RateLimited { attempts: 3, .. }),
        "{err:?}"
    );

    // A bad key is not retried, and its message says what to fix.
    let before = fake.requests().len();
    let mut wrong = config.clone();
    wrong.api_key = ApiKey::new("tml-wrong-key-never-printed");
    let err = TinkerClient::connect(wrong).await.unwrap_err();
    assert!(
        matches!(err, TinkerError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(fake.requests().len(), before + 1);
    let message = err.to_string();
    assert!(
        message.starts_with("the Tinker API key was rejected (401)"),
        "{message}"
    );
    assert!(!format!("{message} {err:?}").contains("never-printed"));
}

#[tokio::test(start_paused = true)]
async fn network_failure_is_service_unavailable() {
    // Bind and drop a listener: nothing answers on that port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = metaclaw_tinker::TinkerConfig::new(
        format!("http://127.0.0.1:{port}"),
        ApiKey::new("tml-k"),
    );
    config.retry.max_retries = 1;
    let err = TinkerClient::connect(config).await.unwrap_err();
    assert!(
        matches!(err, TinkerError::ServiceUnavailable { attempts: 2, .. }),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn expired_future_is_a_typed_error() {
    let fake = Fake::start().await;
    let session = TinkerClient::connect(fake.config()).await.unwrap();
    let model = session.create_lora("base", 8).await.unwrap();
    fake.expire("OptimStep");
    let err = model.optim_step(AdamParams::new(1e-4)).await.unwrap_err();
    assert!(
        matches!(&err, TinkerError::FutureExpired { request_id } if request_id.starts_with("req-")),
        "{err:?}"
    );
    assert_eq!(err.code(), "tinker.future_expired");
    // The seq_id was delivered, so the model keeps working.
    model.optim_step(AdamParams::new(1e-4)).await.unwrap();
    assert!(fake.violations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn expired_sample_is_resubmitted_with_the_next_seq_id() {
    let fake = Fake::start().await;
    let session = TinkerClient::connect(fake.config()).await.unwrap();
    let sampler = session
        .sampler(metaclaw_tinker::SamplerSource::BaseModel("base".into()))
        .await
        .unwrap();
    fake.expire("Sample");
    let seqs = sampler
        .sample(&[1, 2], 2, &SamplingParams::default())
        .await
        .unwrap();
    assert_eq!(seqs.len(), 2);
    assert_eq!(seqs[1].tokens, vec![11, 11]);
    assert_eq!(seqs[0].sequence_id.as_deref(), Some("s0"));
    let seq_ids: Vec<_> = fake
        .requests_to("asample")
        .iter()
        .map(|r| r.json["seq_id"].clone())
        .collect();
    assert_eq!(seq_ids, vec![0, 1]);
    assert!(fake.violations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn failed_results_carry_the_service_category() {
    let fake = Fake::start().await;
    let session = TinkerClient::connect(fake.config()).await.unwrap();
    let model = session.create_lora("base", 8).await.unwrap();
    fake.future_error(
        "ForwardBackward",
        "datum 0: target_tokens has 3 values for 2 input tokens",
    );
    let err = model
        .forward_backward(&[datum()], LossFn::Ppo)
        .await
        .unwrap_err();
    match &err {
        TinkerError::RequestFailed {
            operation,
            category,
            message,
        } => {
            assert_eq!(*operation, "forward_backward");
            assert_eq!(*category, FailureCategory::User);
            assert!(message.contains("target_tokens"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!err.is_transient());
}

#[tokio::test(start_paused = true)]
async fn polls_follow_try_again_and_metadata_answers() {
    let fake = Fake::start().await;
    fake.set_try_again_polls(3);
    fake.set_metadata_first(true);
    let session = TinkerClient::connect(fake.config()).await.unwrap();
    let model = session.create_lora("base", 8).await.unwrap();
    let out = model
        .forward_backward(&[datum(), datum()], LossFn::ImportanceSampling)
        .await
        .unwrap();
    assert_eq!(out.logprobs(0), Some(&[-1.0, -2.0][..]));
    assert_eq!(out.logprobs(1), Some(&[-1.0, -2.0][..]));
    assert_eq!(out.loss(), Some(2.0));

    let polls: Vec<_> = fake
        .requests_to("retrieve_future")
        .into_iter()
        .filter(|r| r.header("x-tinker-request-type") == Some("ForwardBackward"))
        .collect();
    // Three try_again, one metadata-only, then the result without metadata.
    let iterations: Vec<_> = polls
        .iter()
        .map(|r| r.header("x-tinker-request-iteration").unwrap())
        .collect();
    assert_eq!(iterations, vec!["0", "1", "2", "3", "4"]);
    let allowed: Vec<_> = polls
        .iter()
        .map(|r| r.json["allow_metadata_only"].as_bool().unwrap())
        .collect();
    assert_eq!(allowed, vec![true, true, true, true, false]);
    assert!(polls
        .iter()
        .all(|r| r.header("accept") == Some("application/x-protobuf")));
    assert!(polls[0]
        .header("x-tinker-create-promise-roundtrip-time")
        .is_some());
    assert!(polls[1]
        .header("x-tinker-create-promise-roundtrip-time")
        .is_none());
    // try_again is answered by polling again at once: no time passes.
    assert_eq!(gap(&polls[0], &polls[4]), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn heartbeat_every_ten_seconds_until_finish() {
    let fake = Fake::start().await;
    let session = TinkerClient::connect(fake.config()).await.unwrap();
    let created = fake.requests_to("create_session").pop().unwrap();
    tokio::time::sleep(Duration::from_secs(35)).await;
    settle().await;

    let beats = fake.requests_to("session_heartbeat");
    let offsets: Vec<_> = beats.iter().map(|b| gap(&created, b).as_secs()).collect();
    assert_eq!(offsets, vec![10, 20, 30]);
    assert!(beats
        .iter()
        .all(|b| b.json["session_id"] == session.id() && b.json["type"] == "session_heartbeat"));
    let status = session.heartbeat();
    assert_eq!(
        (status.sent, status.acknowledged, status.session_gone),
        (3, 3, false)
    );

    session.finish().await.unwrap();
    let finish = fake.requests().pop().unwrap();
    assert!(finish.path.ends_with("/finish"));
    assert_eq!(finish.json["reason"]["type"], "success");
    tokio::time::sleep(Duration::from_secs(60)).await;
    settle().await;
    assert_eq!(fake.requests_to("session_heartbeat").len(), 3);
}

#[tokio::test(start_paused = true)]
async fn heartbeat_stops_when_dropped_or_the_session_is_gone() {
    let fake = Fake::start().await;
    let session = TinkerClient::connect(fake.config()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(15)).await;
    fake.drop_sessions();
    tokio::time::sleep(Duration::from_secs(10)).await;
    settle().await;
    let status = session.heartbeat();
    assert!(status.session_gone && status.stopped, "{status:?}");
    let beats = fake.requests_to("session_heartbeat");
    assert_eq!(
        beats.iter().map(|b| b.status).collect::<Vec<_>>(),
        vec![200, 410]
    );
    // The session is gone: work on it fails with a clear error.
    let err = session.create_lora("base", 8).await.unwrap_err();
    assert!(matches!(err, TinkerError::SessionGone { .. }), "{err:?}");
    tokio::time::sleep(Duration::from_secs(60)).await;
    settle().await;
    assert_eq!(fake.requests_to("session_heartbeat").len(), 2);

    // Dropping a session (and everything made from it) stops its heartbeat.
    let other = TinkerClient::connect(fake.config()).await.unwrap();
    let model = other.create_lora("base", 8).await.unwrap();
    drop(other);
    tokio::time::sleep(Duration::from_secs(15)).await;
    settle().await;
    assert_eq!(
        fake.requests_to("session_heartbeat").len(),
        3,
        "a live model keeps the session beating"
    );
    drop(model);
    tokio::time::sleep(Duration::from_secs(30)).await;
    settle().await;
    assert_eq!(fake.requests_to("session_heartbeat").len(), 3);
}

#[tokio::test(start_paused = true)]
async fn seq_ids_increment_per_model_in_call_order() {
    let fake = Fake::start().await;
    let session = TinkerClient::connect(fake.config()).await.unwrap();
    let a = session.create_lora("base", 8).await.unwrap();
    let b = session.create_lora("base", 16).await.unwrap();
    assert!(a.id().ends_with(":train:0") && b.id().ends_with(":train:1"));
    assert_eq!(a.info().tokenizer_id.as_deref(), Some("base"));

    let fwd = a
        .submit_forward_backward(&[datum()], LossFn::ImportanceSampling)
        .await
        .unwrap();
    let step = a.submit_optim_step(AdamParams::new(1e-4)).await.unwrap();
    b.optim_step(AdamParams::new(1e-4)).await.unwrap();
    fwd.await.unwrap();
    step.await.unwrap();
    // Concurrent calls on one model still get consecutive seq_ids.
    let (x, y, z) = tokio::join!(
        a.optim_step(AdamParams::new(1e-4)),
        a.save_weights("step_0001"),
        a.optim_step(AdamParams::new(1e-4)),
    );
    x.unwrap();
    assert!(y.unwrap().as_str().ends_with(":train:0/weights/step_0001"));
    z.unwrap();
    let sampler = b.save_weights_and_get_sampler().await.unwrap();
    assert_eq!(sampler.base_model(), Some("base"));

    let mut seen: Vec<(String, i64)> = Vec::new();
    for r in fake.requests() {
        if let Some(p) = &r.proto {
            seen.push((p.model_id.clone(), i64::from(p.seq_id)));
        } else if let Some(seq) = r.json.get("seq_id").and_then(|v| v.as_i64()) {
            if r.path != "asample" {
                seen.push((r.json["model_id"].as_str().unwrap().to_string(), seq));
            }
        }
    }
    let of = |m: &str| {
        seen.iter()
            .filter(|(id, _)| id == m)
            .map(|(_, s)| *s)
            .collect::<Vec<_>>()
    };
    assert_eq!(of(a.id()), vec![1, 2, 3, 4, 5]);
    assert_eq!(of(b.id()), vec![1, 2]);
    assert_eq!(a.next_seq_id().await, 6);
    let models: Vec<_> = fake
        .requests_to("create_model")
        .iter()
        .map(|r| r.json["model_seq_id"].clone())
        .collect();
    assert_eq!(models, vec![0, 1]);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[tokio::test(start_paused = true)]
async fn a_failed_submission_poisons_the_model() {
    let fake = Fake::start().await;
    let session = TinkerClient::connect(fake.config()).await.unwrap();
    let model = session.create_lora("base", 8).await.unwrap();
    model.optim_step(AdamParams::new(1e-4)).await.unwrap();
    fake.fail("optim_step", 400, &[]);
    let err = model.optim_step(AdamParams::new(1e-4)).await.unwrap_err();
    assert!(
        matches!(err, TinkerError::BadRequest { status: 400, .. }),
        "{err:?}"
    );
    let err = model.optim_step(AdamParams::new(1e-4)).await.unwrap_err();
    assert!(
        matches!(err, TinkerError::ModelPoisoned { seq_id: 2 }),
        "{err:?}"
    );
    assert_eq!(fake.requests_to("optim_step").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn jwt_is_exchanged_and_renewed_on_invalid_token() {
    let fake = Fake::start().await;
    fake.set_jwt_auth(true);
    let session = TinkerClient::connect(fake.config()).await.unwrap();
    let paths: Vec<_> = fake.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, vec!["client/config", "auth/token", "create_session"]);
    let first_jwt = fake.requests_to("create_session")[0]
        .header("x-api-key")
        .unwrap()
        .to_string();
    assert!(first_jwt.starts_with("eyJ"));
    assert_eq!(
        fake.requests_to("auth/token")[0].header("x-api-key"),
        Some(support::KEY)
    );

    fake.revoke_jwts();
    let model = session.create_lora("base", 8).await.unwrap();
    let creates = fake.requests_to("create_model");
    assert_eq!(
        creates.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![401, 200]
    );
    assert_eq!(fake.requests_to("auth/token").len(), 2);
    let second_jwt = creates[1].header("x-api-key").unwrap();
    assert_ne!(second_jwt, first_jwt);
    assert!(model.id().ends_with(":train:0"));
}

#[tokio::test(start_paused = true)]
async fn invalid_inputs_never_reach_the_service() {
    let fake = Fake::start().await;
    let session = TinkerClient::connect(fake.config()).await.unwrap();
    let model = session.create_lora("base", 8).await.unwrap();
    let before = fake.requests().len();
    assert!(matches!(
        model.forward_backward(&[], LossFn::Ppo).await,
        Err(TinkerError::InvalidInput(_))
    ));
    assert!(matches!(
        model.optim_step(AdamParams::new(-1.0)).await,
        Err(TinkerError::InvalidInput(_))
    ));
    assert!(matches!(
        model.save_weights("../escape").await,
        Err(TinkerError::InvalidInput(_))
    ));
    assert!(matches!(
        session.create_lora("base", 0).await,
        Err(TinkerError::InvalidInput(_))
    ));
    assert_eq!(fake.requests().len(), before);
    // Nothing was submitted, so the model is still usable.
    assert_eq!(model.next_seq_id().await, 1);
}

#[tokio::test(start_paused = true)]
async fn large_batches_are_split_to_the_service_limit() {
    let fake = Fake::start().await;
    fake.set_max_chunk_len(2);
    let session = TinkerClient::connect(fake.config()).await.unwrap();
    assert_eq!(session.features().fwdbwd_max_chunk_len, 2);
    let model = session.create_lora("base", 8).await.unwrap();
    let long = Datum::shifted(&[1, 2, 3, 4], vec![0.0; 3], vec![1.0; 3]).unwrap();
    let data = vec![datum(), long, datum(), datum(), datum()];
    let pending = model
        .submit_forward_backward(&data, LossFn::Cispo)
        .await
        .unwrap();
    assert_eq!(pending.request_ids().len(), 3);
    let out = pending.await.unwrap();
    // Outputs joined in input order; `loss:sum` (datums per chunk) added up.
    assert_eq!(out.outputs.len(), 5);
    assert_eq!(out.logprobs(1), Some(&[-1.0, -2.0, -3.0][..]));
    assert_eq!(out.loss(), Some(5.0));
    let chunks: Vec<_> = fake
        .requests_to("forward_backward")
        .into_iter()
        .map(|r| r.proto.unwrap())
        .map(|p| (p.seq_id, p.data.len(), p.loss_fn))
        .collect();
    assert_eq!(
        chunks,
        vec![
            (1, 2, "cispo".to_string()),
            (2, 2, "cispo".to_string()),
            (3, 1, "cispo".to_string())
        ]
    );
    assert_eq!(model.next_seq_id().await, 4);
}
