//! The naive hub SPEC §14 compares against: actix-web, one tokio broadcast channel, no persistence, no auth,
//! no topics. POST /publish broadcasts the body as one SSE frame to every GET /sse stream. It runs in its
//! own process (the bench re-runs itself), as the cockpit does, so neither shares a CPU budget with the
//! load client.

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{web, App, HttpResponse, HttpServer};
use tokio::sync::broadcast;

/// Set in the environment of the child process that should serve the hub instead of running the bench.
pub const ROLE: &str = "FANOUT_NAIVE_HUB";

/// Numbers frames, as any resumable SSE hub must.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

async fn publish(body: web::Bytes, tx: web::Data<broadcast::Sender<web::Bytes>>) -> HttpResponse {
    let frame = web::Bytes::from(format!(
        "id: {}\nevent: note\ndata: {}\n\n",
        NEXT_ID.fetch_add(1, Ordering::Relaxed),
        String::from_utf8_lossy(&body)
    ));
    let _ = tx.send(frame);
    HttpResponse::Ok().finish()
}

async fn subscribe(tx: web::Data<broadcast::Sender<web::Bytes>>) -> HttpResponse {
    let stream = futures_util::stream::unfold(tx.subscribe(), |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(frame) => return Some((Ok::<_, std::convert::Infallible>(frame), rx)),
                // A lagging subscriber silently skips: the bench counts that as lost.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(stream)
}

/// Serves until killed; prints `naive hub listening on port <n>` once bound.
pub fn serve() {
    let _ = actix_web::rt::System::new().block_on(async {
        let (tx, _) = broadcast::channel::<web::Bytes>(65_536);
        let tx = web::Data::new(tx);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(tx.clone())
                .route("/publish", web::post().to(publish))
                .route("/sse", web::get().to(subscribe))
        })
        .backlog(4096)
        .bind("127.0.0.1:0")
        .expect("bind a loopback port");
        println!("naive hub listening on port {}", server.addrs()[0].port());
        server.run().await
    });
}
