//! `serve`'s `POST /tlsrpt`: reports a sender posts to a `rua=https://…` URI (RFC 8460 §5.3),
//! reaching `serve` through the site's HTTPS reverse proxy. Within `serve`'s limits (its
//! connection bound, header timeout and bearer token, which the proxy adds), the body is capped
//! at [`MAX_BODY`] (413 past it) and the decompressed report at [`super::MAX_JSON`]; the store
//! is written on tokio's blocking pool. Answers: 201 stored, 200 stored before, 400 not a
//! report (the reason in the body), 500 the store failed.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::config::Config;
use crate::notify::Notifier;
use crate::rollover::Timestamp;
use crate::store::Store;

use super::intake::{deliver, take};
use super::parse::{MAX_INPUT, parse_report};

/// The largest body `POST /tlsrpt` reads.
pub const MAX_BODY: usize = MAX_INPUT;

/// What `POST /tlsrpt` needs: the configuration (services, state directory, alert channels).
#[derive(Debug)]
pub struct Intake {
    config: Config,
    notifier: Option<Notifier>,
}

impl Intake {
    /// Take reports into `config`'s store, alerting through `notifier`.
    pub fn new(config: Config, notifier: Option<Notifier>) -> Intake {
        Intake { config, notifier }
    }

    /// Take the report in `body`: the status and a line saying what happened.
    fn take(&self, body: &[u8]) -> (StatusCode, String) {
        let input = "POST /tlsrpt";
        let report = match parse_report(body, input) {
            Ok(r) => r,
            Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")),
        };
        let mut store = match Store::open(&self.config.state_dir) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("tlsrpt: {e}");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the store cannot be opened; see serve's log\n".to_owned(),
                );
            }
        };
        let now = Timestamp::from_millis(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        );
        match take(&mut store, &self.config, &report, "https", now) {
            Ok(taken) if taken.stored => {
                for alert in &taken.alerts {
                    tracing::error!(target: crate::output::ALERT, "{}", alert.summary);
                }
                if let Some(notifier) = &self.notifier {
                    for problem in deliver(notifier, &mut store, &taken.alerts) {
                        tracing::warn!("tlsrpt: {problem}");
                    }
                }
                tracing::info!(
                    "tlsrpt: stored report {} of {}",
                    taken.report_id,
                    taken.organization
                );
                (
                    StatusCode::CREATED,
                    format!(
                        "stored report {} of {}\n",
                        taken.report_id, taken.organization
                    ),
                )
            }
            Ok(taken) => (
                StatusCode::OK,
                format!(
                    "report {} of {} was stored before\n",
                    taken.report_id, taken.organization
                ),
            ),
            Err(e) => {
                tracing::error!("tlsrpt: {e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the report could not be stored; see serve's log\n".to_owned(),
                )
            }
        }
    }
}

/// The `/tlsrpt` route, its body capped at [`MAX_BODY`].
pub fn router(intake: Arc<Intake>) -> axum::Router {
    axum::Router::new()
        .route("/tlsrpt", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(intake)
}

async fn receive(State(intake): State<Arc<Intake>>, body: Bytes) -> Response {
    let done = tokio::task::spawn_blocking(move || intake.take(&body)).await;
    match done {
        Ok((status, text)) => (status, text).into_response(),
        Err(e) => {
            tracing::error!("tlsrpt: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the report could not be taken in\n",
            )
                .into_response()
        }
    }
}
