//! A runtime of its own for the learning loops (the judge, the evolver, the
//! curator): one OS thread at the lowest scheduling priority. When the
//! machine is busy the kernel runs request handling first, so learning
//! takes only the CPU the proxy leaves over and never delays an answer.

use std::future::Future;

use thread_priority::{set_current_thread_priority, ThreadPriority};
use tokio::sync::oneshot;

pub struct LearningRuntime {
    handle: tokio::runtime::Handle,
    /// Dropping it ends the runtime, cancelling whatever still runs on it.
    _stop: oneshot::Sender<()>,
}

impl LearningRuntime {
    pub fn start() -> std::io::Result<LearningRuntime> {
        let (ready, started) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("metaclaw-learning".into())
            .spawn(move || {
                if let Err(error) = set_current_thread_priority(ThreadPriority::Min) {
                    tracing::debug!(?error, "cannot lower the learning thread's priority");
                }
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready.send(Err(error));
                        return;
                    }
                };
                let _ = ready.send(Ok(runtime.handle().clone()));
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        let handle = started
            .recv()
            .map_err(|_| std::io::Error::other("the learning thread stopped while starting"))??;
        Ok(LearningRuntime {
            handle,
            _stop: stop,
        })
    }

    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The thread's nice value, from /proc (Linux).
    #[cfg(target_os = "linux")]
    fn nice_of_current_thread() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Fields after the command name (which may contain spaces).
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        rest.split_whitespace().nth(16).unwrap().parse().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn tasks_run_on_a_low_priority_thread() {
        let runtime = LearningRuntime::start().unwrap();
        let (name, nice) = runtime
            .spawn(async {
                (
                    std::thread::current().name().map(str::to_owned),
                    nice_of_current_thread(),
                )
            })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("metaclaw-learning"));
        assert!(nice > nice_of_current_thread(), "learning nice {nice}");
    }
}
