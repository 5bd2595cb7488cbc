//! PostgreSQL LISTEN with reconnection: one long-lived connection per channel that calls back
//! on every notification. Used to wake job workers and to feed live progress streams; both
//! also poll, so a dropped connection only slows them down.

use std::time::Duration;

use futures_util::StreamExt;

/// Listens on `channel` forever, calling `on_notify` with each payload, and once with `None`
/// after every (re)connection (things may have happened while nobody listened). Reconnects
/// with backoff from 0.5 s up to 30 s.
pub async fn listen(url: String, channel: &'static str, on_notify: impl Fn(Option<&str>)) {
    let mut delay = Duration::from_millis(500);
    loop {
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
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
