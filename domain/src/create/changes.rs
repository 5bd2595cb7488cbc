//! Generation changes within this process, for the live progress streams: the worker's writes
//! arrive as notifications and are fanned out here.

use uuid::Uuid;

/// Fan-out of "generation X changed" to the live progress streams of this process. The host
/// feeds it from PostgreSQL notifications, so changes made by a worker in another process
/// arrive too. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Changes(tokio::sync::broadcast::Sender<Uuid>);

impl Default for Changes {
    fn default() -> Self {
        // Streams that fall this far behind re-read their generation anyway.
        Self(tokio::sync::broadcast::channel(1024).0)
    }
}

impl Changes {
    /// Announces that generation `id` changed.
    pub fn notify(&self, id: Uuid) {
        // No receivers is normal: nobody is watching.
        let _ = self.0.send(id);
    }

    /// Listens for changes.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Uuid> {
        self.0.subscribe()
    }
}
