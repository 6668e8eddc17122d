#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The skill curator end to end inside one process: a real skill library
//! and store in a temp dir, scored turns recorded through the store, and
//! the curator running as a worker of a real scheduler that train-now gives
//! a window. The files, the store, the schedule's history and the event bus
//! show what it did; a pause request stops a run at the next action.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use metaclaw_engine::config::Config;
use metaclaw_engine::curate::{self, Curator};
use metaclaw_engine::events::{EngineEvent, EventBus};
use metaclaw_engine::proxy::ProxyState;
use metaclaw_engine::session::SessionTracker;
use metaclaw_schedule::calendar::Busy;
use metaclaw_schedule::scheduler::{
    self, Journal, Note, Outcome, SchedulerHandle, Settings, Setup, Signals, Stretch, SystemClock,
};
use metaclaw_schedule::{BusyCalendar, Interval};
use metaclaw_skills::{Skill, SkillLibrary, SkillOrigin, SkillStatus};
use metaclaw_store::{
    CurationAction, CurationActor, JudgeVote, JudgementRecord, Store, TurnRecord, TurnStatus,
    TurnType,
};
use tokio::sync::{broadcast, mpsc, watch};

const BODY: &str = "- Write every meeting time with its UTC offset such as 10:00+08:00.\n- Name the time zone of each attendee too.";
const EXTRA: &str = "- Ask which zone is meant.";

fn evolved(name: &str, body: &str) -> Skill {
    let mut skill = Skill::new(name, "Use when stating meeting times", body);
    skill.origin = SkillOrigin::Evolved;
    skill
}

/// A complete main turn of its own session at `at_ms` with `skills` injected.
fn turn(index: u32, at_ms: i64, skills: &[&str]) -> TurnRecord {
    let session_id = format!("session-{index}");
    TurnRecord {
        request_id: format!("request-{index}"),
        session_key: session_id.clone(),
        session_id,
        key_source: "header".into(),
        turn_index: 0,
        turn_type: TurnType::Main,
        client_dialect: "openai".into(),
        upstream_api: "openai".into(),
        model: Some("m".into()),
        stream: false,
        started_at_ms: at_ms,
        latency_ms: 5.0,
        ttfb_ms: None,
        status: TurnStatus::Complete,
        http_status: Some(200),
        prompt_tokens: None,
        completion_tokens: None,
        skill_generation: 0,
        injected_skills: skills.iter().map(|s| s.to_string()).collect(),
        request_json: format!(r#"{{"messages":[{{"role":"user","content":"q{index}"}}]}}"#),
        response_json: Some(r#"{"content":"a"}"#.into()),
        error: None,
    }
}

struct Library {
    _home: tempfile::TempDir,
    state: Arc<ProxyState>,
}

/// Four skills and eight scored turns:
/// * `meeting-offsets` and `meeting-zones`: evolved near-duplicates; the
///   first is used more, the second has one line the first lacks;
/// * `long-preambles`: the user's, injected into three turns scored -1,
///   while the five turns without it since then scored +0.8 on average;
/// * `sql-plans`: the user's, fine.
async fn library() -> Library {
    let home = tempfile::tempdir().unwrap();
    let library = SkillLibrary::open(&home.path().join("skills")).unwrap();
    library
        .write_skill(&evolved("meeting-offsets", BODY))
        .unwrap();
    library
        .write_skill(&evolved("meeting-zones", &format!("{BODY}\n{EXTRA}")))
        .unwrap();
    library
        .write_skill(&Skill::new(
            "long-preambles",
            "Use when answering: start with a long preamble",
            "- Restate the question at length before answering.",
        ))
        .unwrap();
    library
        .write_skill(&Skill::new(
            "sql-plans",
            "Use when tuning SQL",
            "- Read the EXPLAIN plan before adding an index.",
        ))
        .unwrap();
    let store = Store::open(&home.path().join("metaclaw.db")).unwrap();
    let turns: [(&[&str], i8); 8] = [
        (&["long-preambles"], -1),
        (&["long-preambles"], -1),
        (&["long-preambles", "meeting-zones"], -1),
        (&["meeting-offsets"], 1),
        (&["meeting-offsets", "sql-plans"], 1),
        (&[], 1),
        (&["sql-plans"], 1),
        (&["meeting-offsets"], 0),
    ];
    for (index, (skills, _)) in turns.iter().enumerate() {
        store.record_turn(turn(index as u32, 1_000 + index as i64 * 1_000, skills));
    }
    store.flush().await.unwrap();
    let reader = store.reader().unwrap();
    for (index, (_, score)) in turns.iter().enumerate() {
        let id = reader
            .session(&format!("session-{index}"))
            .unwrap()
            .unwrap()
            .turns[0]
            .id;
        store.record_judgement(JudgementRecord {
            turn_id: id,
            score: Some(*score),
            votes: vec![JudgeVote::scored(*score)],
            reason: Some("judged".into()),
            judge_model: "judge".into(),
            judged_at_ms: 20_000,
            next_attempt_at_ms: 0,
        });
    }
    store.flush().await.unwrap();
    let mut config = Config::default();
    config.curator.min_uses = 3;
    let state = Arc::new(ProxyState::new(
        config,
        None,
        library,
        store,
        Arc::new(SessionTracker::new(Duration::from_secs(60))),
        EventBus::new(),
        0,
    ));
    Library { _home: home, state }
}

fn curator(state: &ProxyState) -> Curator {
    Curator::from_config(&state.config.curator)
}

fn skill(state: &ProxyState, name: &str) -> Arc<Skill> {
    state.library.snapshot().get(name).cloned().unwrap()
}

struct NoMeetings;

impl BusyCalendar for NoMeetings {
    fn busy_in(&self, _: Interval) -> Vec<Busy> {
        Vec::new()
    }
}

/// Hands the scheduler's notes to the test.
struct Notes(mpsc::UnboundedSender<Note>);

impl Journal for Notes {
    fn note(&self, note: &Note) {
        let _ = self.0.send(note.clone());
    }
    fn idle_stretch(&self, _: &Stretch) {}
    fn paused_until(&self, _: Option<chrono::DateTime<chrono::Utc>>) {}
}

/// A scheduler with no presence signals and no sleep hours: windows open
/// only when asked to train now.
fn scheduler() -> (SchedulerHandle, mpsc::UnboundedReceiver<Note>) {
    let (notes, received) = mpsc::unbounded_channel();
    let (_requests, activity) = watch::channel(None);
    let (handle, _task) = scheduler::spawn(Setup {
        settings: Settings::default(),
        paused_until: None,
        signals: Signals::default(),
        calendar: Arc::new(NoMeetings),
        calendar_sources: Vec::new(),
        activity,
        history: Vec::new(),
        clock: Arc::new(SystemClock),
        journal: Arc::new(Notes(notes)),
        new_id: || uuid::Uuid::now_v7().to_string(),
    });
    (handle, received)
}

/// The next work that ended, with the worker that did it.
async fn work_ended(
    notes: &mut mpsc::UnboundedReceiver<Note>,
) -> (String, String, Outcome, String) {
    let mut started = Vec::new();
    loop {
        let note = tokio::time::timeout(Duration::from_secs(20), notes.recv())
            .await
            .expect("no work ended")
            .expect("the scheduler stopped");
        match note {
            Note::WorkStarted { work, .. } => started.push(work),
            Note::WorkEnded {
                id,
                outcome,
                summary,
                ..
            } => {
                let worker = started
                    .iter()
                    .find(|w| w.id == id)
                    .map(|w| w.worker.clone())
                    .unwrap_or_default();
                return (id, worker, outcome, summary);
            }
            _ => {}
        }
    }
}

fn drain(events: &mut broadcast::Receiver<EngineEvent>) -> Vec<EngineEvent> {
    let mut out = Vec::new();
    while let Ok(event) = events.try_recv() {
        out.push(event);
    }
    out
}

#[tokio::test]
async fn train_now_gives_the_curator_a_window_and_it_merges_and_disables() {
    let Library { _home, state } = library().await;
    let mut events = state.events.subscribe();
    let (handle, mut notes) = scheduler();
    let task = tokio::spawn(curate::run(
        state.clone(),
        curator(&state),
        handle.worker(curate::WORKER),
        handle.clone(),
    ));

    handle.train_now().await.unwrap();
    let (work_id, worker, outcome, summary) = work_ended(&mut notes).await;
    assert_eq!(worker, "curator");
    assert_eq!(outcome, Outcome::Finished);
    assert_eq!(summary, "merged 1, disabled 1");

    // The harmful skill is off, on disk, with the evidence as its reason.
    let hurt = skill(&state, "long-preambles");
    assert_eq!(hurt.status, SkillStatus::Disabled);
    let reason = hurt.disabled_reason().unwrap();
    assert!(
        reason.starts_with("hurts: mean score -1.00 over 3 scored turns with it, +0.80 over 5"),
        "{reason}"
    );
    let text = std::fs::read_to_string(&hurt.path).unwrap();
    assert!(
        text.contains("status: disabled") && text.contains("disabled_by: curator"),
        "{text}"
    );
    // The less used duplicate went into the more used one.
    let gone = skill(&state, "meeting-zones");
    assert_eq!(gone.status, SkillStatus::Disabled);
    assert_eq!(gone.disabled_reason(), Some("merged into meeting-offsets"));
    let kept = skill(&state, "meeting-offsets");
    assert_eq!(kept.status, SkillStatus::Active);
    assert!(kept.body.contains(EXTRA), "{}", kept.body);
    assert!(kept.body.contains("## Also learned ("), "{}", kept.body);
    assert_eq!(skill(&state, "sql-plans").status, SkillStatus::Active);
    // Disabled skills are never retrieved.
    let hits = state
        .library
        .snapshot()
        .search("long preamble restate the question", 5);
    assert!(hits.iter().all(|h| h.skill.name != "long-preambles"));

    // A new generation, in the store and the proxy.
    assert_eq!(state.skill_generation(), 1);
    let reader = state.store.reader().unwrap();
    assert_eq!(reader.skill_generation().unwrap(), 1);
    // What was done, recorded with the run and the evidence.
    let merged = reader.curations_of("meeting-offsets").unwrap();
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0].skill_name, "meeting-zones");
    assert_eq!(merged[0].action, CurationAction::Merged);
    assert_eq!(merged[0].actor, CurationActor::Curator);
    assert_eq!(merged[0].work_id.as_deref(), Some(work_id.as_str()));
    assert_eq!(merged[0].skill_generation, Some(1));
    assert!(
        merged[0]
            .reason
            .contains("1 new line added to meeting-offsets"),
        "{}",
        merged[0].reason
    );
    let disabled = reader.curations_of("long-preambles").unwrap();
    assert_eq!(disabled[0].action, CurationAction::Disabled);
    assert_eq!(
        (
            disabled[0].uses,
            disabled[0].mean_score,
            disabled[0].baseline_score
        ),
        (Some(3), Some(-1.0), Some(0.8))
    );

    // Announced on the bus.
    let announced = drain(&mut events);
    for expected in [
        EngineEvent::SkillDisabled {
            name: "long-preambles".into(),
            reason: reason.to_string(),
        },
        EngineEvent::SkillMerged {
            name: "meeting-offsets".into(),
            from: "meeting-zones".into(),
        },
        EngineEvent::SkillDisabled {
            name: "meeting-zones".into(),
            reason: "merged into meeting-offsets".into(),
        },
    ] {
        assert!(
            announced.contains(&expected),
            "{expected:?} not in {announced:?}"
        );
    }

    // Asked again, within the interval: it runs, and finds nothing to do.
    handle.train_now().await.unwrap();
    let (_, worker, outcome, summary) = work_ended(&mut notes).await;
    assert_eq!((worker.as_str(), outcome), ("curator", Outcome::Finished));
    assert_eq!(summary, "merged 0, disabled 0");
    assert_eq!(
        state.skill_generation(),
        1,
        "nothing changed, no new generation"
    );
    task.abort();
}

#[tokio::test]
async fn a_pause_request_stops_the_run_at_the_next_action_and_the_rest_waits() {
    let Library { _home, state } = library().await;
    let rules = curator(&state).rules;
    let asked = AtomicUsize::new(0);
    // Asked before each action: go on once, then pause.
    let pause = || asked.fetch_add(1, Ordering::SeqCst) >= 1;
    let report = curate::run_once(&state, &rules, None, &pause).await;
    assert_eq!((report.disabled, report.merged), (1, 0));
    assert!(report.paused);
    assert_eq!(report.left, 1);
    assert_eq!(report.summary(), "merged 0, disabled 1; paused with 1 left");
    assert_eq!(report.generation, Some(1));
    assert_eq!(
        skill(&state, "long-preambles").status,
        SkillStatus::Disabled
    );
    assert_eq!(skill(&state, "meeting-zones").status, SkillStatus::Active);

    let report = curate::run_once(&state, &rules, None, &|| false).await;
    assert_eq!(report.summary(), "merged 1, disabled 0");
    assert_eq!(report.generation, Some(2));
    assert_eq!(skill(&state, "meeting-zones").status, SkillStatus::Disabled);
}

#[tokio::test]
async fn a_skill_the_user_disabled_meanwhile_is_left_as_it_is() {
    let Library { _home, state } = library().await;
    let rules = curator(&state).rules;
    // The user disables the duplicate between planning and the merge: the
    // pause hook runs right before each action.
    let pause = || {
        if let Some(zones) = state.library.snapshot().get("meeting-zones") {
            if zones.status == SkillStatus::Active {
                let mut mine = (**zones).clone();
                mine.disable("not needed", "user", "2026-03-16T14:00:00Z");
                state.library.write_skill(&mine).unwrap();
            }
        }
        false
    };
    let report = curate::run_once(&state, &rules, None, &pause).await;
    assert_eq!(report.summary(), "merged 0, disabled 1, skipped 1");
    assert_eq!(
        skill(&state, "meeting-zones").disabled_reason(),
        Some("not needed")
    );
    assert!(!skill(&state, "meeting-offsets").body.contains(EXTRA));
}
