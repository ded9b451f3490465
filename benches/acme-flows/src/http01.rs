//! The http-01 responder (RFC 8555 §8.3): one small HTTP server on 127.0.0.1 answering
//! `/.well-known/acme-challenge/<token>` for every name from a map the flows share.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::net::TcpListener;

const PREFIX: &str = "/.well-known/acme-challenge/";

/// Token -> key authorization, shared by every flow and the responder.
#[derive(Clone, Default)]
pub struct Tokens {
    map: Arc<RwLock<HashMap<String, String>>>,
    served: Arc<AtomicU64>,
}

impl Tokens {
    /// Publishes `key_authorization` for `token` until the returned guard is dropped.
    pub fn publish(&self, token: String, key_authorization: String) -> Published {
        self.map
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(token.clone(), key_authorization);
        Published {
            tokens: self.clone(),
            token,
        }
    }

    /// How many challenge requests were answered with a key authorization.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    fn answer(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix(PREFIX)?;
        let found = self
            .map
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(token)
            .cloned();
        if found.is_some() {
            self.served.fetch_add(1, Ordering::Relaxed);
        }
        found
    }
}

/// A published token; removes it from the map when dropped.
pub struct Published {
    tokens: Tokens,
    token: String,
}

impl Drop for Published {
    fn drop(&mut self) {
        self.tokens
            .map
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.token);
    }
}

/// Serves challenge responses on `listener` until the process exits.
pub async fn serve(listener: TcpListener, tokens: Tokens) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors or similar: back off and keep serving.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let tokens = tokens.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let rsp = respond(&tokens, req.uri().path());
                async move { Ok::<_, Infallible>(rsp) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(tokens: &Tokens, path: &str) -> Response<Full<Bytes>> {
    let (status, body) = match tokens.answer(path) {
        Some(key_authorization) => (StatusCode::OK, key_authorization),
        None => (StatusCode::NOT_FOUND, "no such token\n".to_owned()),
    };
    let mut rsp = Response::new(Full::new(Bytes::from(body)));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    rsp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_published_tokens_only_while_published() {
        let tokens = Tokens::default();
        let guard = tokens.publish("tok".into(), "tok.thumb".into());
        assert_eq!(
            respond(&tokens, "/.well-known/acme-challenge/tok").status(),
            StatusCode::OK
        );
        assert_eq!(
            respond(&tokens, "/.well-known/acme-challenge/other").status(),
            StatusCode::NOT_FOUND
        );
        drop(guard);
        assert_eq!(
            respond(&tokens, "/.well-known/acme-challenge/tok").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(tokens.served(), 1);
    }
}
