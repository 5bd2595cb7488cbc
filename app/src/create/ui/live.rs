//! Following a generation in the browser: Server-Sent Events first, polling as fallback.
//! A split point of its own (see the module's documentation).

use std::time::Duration;

use leptos::prelude::*;
use leptos::wasm_bindgen::JsCast;
use leptos::wasm_bindgen::closure::Closure;
use leptos::web_sys::{EventSource, MessageEvent};
use uuid::Uuid;

use crate::create::{GenerationView, get_generation};

const EVENTS: [&str; 4] = ["queued", "running", "succeeded", "failed"];

/// Opens the event stream for `id` and keeps `state` up to date until it is final.
#[lazy]
pub fn follow(id: Uuid, state: RwSignal<GenerationView>) {
    let Ok(source) = EventSource::new(&format!("/api/generations/{id}/events")) else {
        poll(id, state);
        return;
    };
    let stored = StoredValue::new_local(Some(source.clone()));
    on_cleanup(move || {
        if let Some(Some(s)) = stored.try_get_value() {
            s.close();
        }
    });
    let on_event = {
        let source = source.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(text) = ev.data().as_string() else {
                return;
            };
            let Ok(view) = serde_json::from_slice::<GenerationView>(text.as_bytes()) else {
                return;
            };
            let done = view.status.is_final();
            if state.try_set(view).is_some() || done {
                // The card is gone, or nothing more will come: stop the stream, or the
                // browser would reconnect when the server ends it.
                source.close();
            }
        })
    };
    for name in EVENTS {
        let _ = source.add_event_listener_with_callback(name, on_event.as_ref().unchecked_ref());
    }
    on_event.forget();
    let on_error = {
        let source = source.clone();
        Closure::<dyn FnMut()>::new(move || {
            // A broken stream (a proxy that buffers, a restart): switch to polling.
            source.close();
            if state.try_with_untracked(|g| !g.status.is_final()) == Some(true) {
                poll(id, state);
            }
        })
    };
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
}

/// Asks for the status every 1.5 s until it is final.
pub fn poll(id: Uuid, state: RwSignal<GenerationView>) {
    leptos::task::spawn_local(async move {
        let next = match get_generation(id).await {
            Ok(view) => {
                let done = view.status.is_final();
                if state.try_set(view).is_some() || done {
                    return;
                }
                Duration::from_millis(1500)
            }
            Err(_) => Duration::from_secs(4),
        };
        set_timeout(move || poll(id, state), next);
    });
}
