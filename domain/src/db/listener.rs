//! PostgreSQL LISTEN with reconnection: one long-lived connection per channel that calls back
//! on every notification. Used to wake job workers and to feed live progress streams; both
//! also poll, so a dropped connection only slows them down.

use std::time::Duration;

use futures_util::StreamExt;

/// Listens on `channel` forever, calling `on_notify` with each payload, and once with `None`
/// after every (re)connection (things may have happened while nobody listened). Reconnects
/// with backoff from 0.5 s up to 30 s.
pub async fn listen(url: String, channel: &'static str, on_notify: impl Fn(Option<&str>)) {
    listen_and_catch_up(url, channel, on_notify, |_| async {}).await;
}

/// [`listen`], also running `catch_up` on the listening connection each time LISTEN is in
/// place, before the `None` call: for listeners that must reload what was announced while
/// nobody listened (session revocations). Notifications arriving meanwhile are delivered
/// as usual; a connection lost during the catch-up cancels it, and the next one runs it again.
pub async fn listen_and_catch_up<F, Fut>(
    url: String,
    channel: &'static str,
    on_notify: impl Fn(Option<&str>),
    catch_up: F,
) where
    F: Fn(std::sync::Arc<tokio_postgres::Client>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut delay = Duration::from_millis(500);
    loop {
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
                let client = std::sync::Arc::new(client);
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                let driver = async {
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                                on_notify(Some(n.payload()));
                            }
                            Ok(_) => {}
                            Err(e) => return e.to_string(),
                        }
                    }
                    "connection closed".to_owned()
                };
                let subscribe = async {
                    client.batch_execute(&format!("LISTEN {channel}")).await?;
                    tracing::debug!(channel, "listening for notifications");
                    catch_up(client.clone()).await;
                    on_notify(None);
                    std::future::pending::<Result<(), tokio_postgres::Error>>().await
                };
                let reason = tokio::select! {
                    reason = driver => reason,
                    Err(e) = subscribe => e.to_string(),
                };
                tracing::warn!(channel, reason = %reason, "notifications interrupted; polling until reconnected");
                delay = Duration::from_millis(500);
            }
            Err(e) => {
                tracing::warn!(channel, error = %e, "could not listen for notifications; polling");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}
