//! The WebAssembly entry point: hydrate the server-rendered console, nothing else.

/// Hydrates the page. Pages are lazy routes (each its own wasm chunk), so hydration is async: it
/// waits for the page's chunk (preloaded by the page's own `<link>`s) before it walks the DOM.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    let Some(body) = leptos::prelude::document().body() else {
        return;
    };
    wasm_bindgen_futures::spawn_local(async move {
        leptos::mount::hydrate_from_async(body.clone(), app::App)
            .await
            .forget();
        // Marks the page interactive (end-to-end tests wait for it).
        let _ = body.set_attribute("data-hydrated", "true");
    });
}
