//! The WebAssembly entry point: hydrate the server-rendered console, nothing else.

use wasm_bindgen::JsValue;

/// Where a tab remembers the page it reloaded after a failed hydration.
const RELOADED: &str = "tollgate.rehydrated";

/// Hydrates the page. Pages are lazy routes (each its own wasm chunk), so hydration is async: it
/// waits for the page's chunk (preloaded by the page's own `<link>`s) before it walks the DOM.
///
/// A page whose hydration panics (the browser's view of the page differs from the server's,
/// say a page built from other data than it was rendered with) would stay server-rendered and
/// inert: it reloads itself once instead (remembered per tab for that URL, so a page that always
/// fails does not loop), and says so on the console, where the end-to-end tests count it as a
/// failure. The one such cause seen, data created inside a guarded page's view, is gone (see
/// `app::components::guard`).
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        reload_once();
    }));
    let Some(body) = leptos::prelude::document().body() else {
        return;
    };
    wasm_bindgen_futures::spawn_local(async move {
        leptos::mount::hydrate_from_async(body.clone(), app::App)
            .await
            .forget();
        // Marks the page interactive (end-to-end tests wait for it).
        let _ = body.set_attribute("data-hydrated", "true");
        if let Some(storage) = storage() {
            let _ = storage.remove_item(RELOADED);
        }
    });
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

/// After a panic before the page was hydrated: reload it, unless this tab just did so.
fn reload_once() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let hydrated = window
        .document()
        .and_then(|d| d.body())
        .is_none_or(|b| b.has_attribute("data-hydrated"));
    if hydrated {
        return;
    }
    let here = window.location().href().unwrap_or_default();
    let Some(storage) = storage() else {
        return;
    };
    if storage.get_item(RELOADED).ok().flatten().as_deref() == Some(here.as_str()) {
        return;
    }
    let _ = storage.set_item(RELOADED, &here);
    web_sys::console::warn_1(&JsValue::from_str(
        "tollgate: the page failed to hydrate; reloading it once",
    ));
    let _ = window.location().reload();
}
