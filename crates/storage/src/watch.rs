//! The stream a watch delivers, common to every backend.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures::Stream;
use tokio::sync::mpsc;

use crate::{Event, Result, Revision};

/// One item of a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchMessage {
    /// Changes, in revision order. Never empty.
    Events(Vec<Event>),
    /// Every change up to this revision has been delivered; nothing in range changed since.
    Progress(Revision),
}

/// A running watch: a stream of [`WatchMessage`]s. A backend feeds it through a channel; an
/// error (such as [`crate::Error::Compacted`]) is the last item. Dropping the stream cancels
/// the watch.
#[derive(Debug)]
pub struct WatchStream {
    rx: mpsc::Receiver<Result<WatchMessage>>,
    progress: mpsc::UnboundedSender<()>,
}

impl WatchStream {
    /// Creates a stream that yields what `rx` receives and forwards progress requests to the
    /// backend on `progress`.
    pub fn new(
        rx: mpsc::Receiver<Result<WatchMessage>>,
        progress: mpsc::UnboundedSender<()>,
    ) -> Self {
        Self { rx, progress }
    }

    /// Receives the next message; `None` once the watch has ended.
    pub async fn recv(&mut self) -> Option<Result<WatchMessage>> {
        self.rx.recv().await
    }

    /// Asks the backend for a [`WatchMessage::Progress`] as soon as every change so far has been
    /// delivered.
    pub fn request_progress(&self) {
        // A closed backend side means the stream is ending anyway.
        let _ = self.progress.send(());
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchMessage>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
