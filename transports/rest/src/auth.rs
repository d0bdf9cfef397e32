//! The API-key and rate-limit layers.
//!
//! [`authenticate`] reads `Authorization: Bearer <token>`, checks it with
//! [`ApiKeys::authenticate`] (off the executor; a checked key is trusted for the configured
//! cache time, so a revocation reaches every replica within it) and puts the [`Principal`] in
//! the request's extensions, where the REST routes and the MCP transport find it. No key, or a
//! bad one: `401` with a JSON body and `WWW-Authenticate: Bearer`. [`rate_limit`] then allows
//! each key its quota (GCRA, `governor`): `429` with `Retry-After` beyond it.

use crate::routes::error_response;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use cortex_core::ErrorKind;
use cortex_core::access::{ApiKeys, Principal};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What [`authenticate`] needs.
pub struct AuthState {
    keys: ApiKeys,
    enabled: bool,
    ttl: Duration,
    /// Checked keys by the SHA-256 of their token.
    cache: quick_cache::sync::Cache<[u8; 32], (Principal, Instant)>,
}

impl AuthState {
    /// Checks tokens against `keys` when `enabled`, trusting a checked key for `ttl`.
    pub fn new(keys: ApiKeys, enabled: bool, ttl: Duration) -> Self {
        AuthState {
            keys,
            enabled,
            ttl,
            cache: quick_cache::sync::Cache::new(10_000),
        }
    }
}

fn unauthorized(message: &str) -> Response {
    let mut r = error_response(StatusCode::UNAUTHORIZED, ErrorKind::Unauthorized, message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"cortex\""),
    );
    r
}

/// The API-key layer (see the module docs). With auth off, requests pass with no principal.
pub async fn authenticate(
    State(state): State<Arc<AuthState>>,
    mut request: Request,
    next: Next,
) -> Response {
    if !state.enabled {
        return next.run(request).await;
    }
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return unauthorized(
            "this endpoint needs an API key: send `Authorization: Bearer cortex_…` (create one \
             with `cortex keys api create --name NAME --role read|write|admin`)",
        );
    };
    let token = match value.to_str().ok().and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    }) {
        Some(t) => t.trim().to_owned(),
        None => {
            return unauthorized("the Authorization header must be `Bearer <API key>`");
        }
    };
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let cached = state
        .cache
        .get(&digest)
        .filter(|(_, at)| at.elapsed() < state.ttl);
    let principal = match cached {
        Some((p, _)) => p,
        None => {
            let keys = state.keys.clone();
            let checked = tokio::task::spawn_blocking(move || keys.authenticate(&token)).await;
            match checked {
                Ok(Ok(p)) => {
                    state.cache.insert(digest, (p.clone(), Instant::now()));
                    p
                }
                Ok(Err(e)) if e.kind() == ErrorKind::Unauthorized => {
                    return unauthorized(e.message());
                }
                Ok(Err(e)) => {
                    return error_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        e.kind(),
                        &format!("the API key could not be checked: {e}"),
                    );
                }
                Err(_) => {
                    return error_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        ErrorKind::Backend,
                        "the API key check failed unexpectedly",
                    );
                }
            }
        }
    };
    request.extensions_mut().insert(principal.clone());
    let mut response = next.run(request).await;
    // For the request log, which runs outside this layer.
    response.extensions_mut().insert(principal);
    response
}

/// The per-key limiter.
pub struct Limiter {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl Limiter {
    /// `per_second` requests a second per key, as a burst too; 0: no limit.
    pub fn new(per_second: u32) -> Self {
        Limiter {
            limiter: NonZeroU32::new(per_second)
                .map(|n| RateLimiter::keyed(Quota::per_second(n).allow_burst(n))),
        }
    }
}

/// The rate-limit layer (after [`authenticate`]): keyed by the API key's id, or one shared
/// bucket when auth is off.
pub async fn rate_limit(
    State(state): State<Arc<Limiter>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(limiter) = &state.limiter {
        let key = request
            .extensions()
            .get::<Principal>()
            .map_or_else(|| "-".to_owned(), |p| p.key_id.clone());
        if let Err(not_until) = limiter.check_key(&key) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut r = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorKind::Unavailable,
                &format!(
                    "rate limit reached for this API key (set by CORTEX_RATE_LIMIT); retry in \
                     {secs} s"
                ),
            );
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        if limiter.len() > 100_000 {
            limiter.retain_recent();
        }
    }
    next.run(request).await
}
