//! Routes: `GET /`, `GET /bytes/N`, `POST /echo`, and files under `--root`.

use super::files;
use super::request::Method;
use super::response::Status;
use std::path::Path;

/// Largest `/bytes/N`.
pub const MAX_BYTES: u64 = 1 << 30;

/// The body of `GET /`.
pub const INDEX: &[u8] = b"Hello from xdptcp\n";

/// What a request asks for.
#[derive(Debug)]
pub enum Route {
    Index,
    Bytes(u64),
    Echo,
    File(std::fs::File, u64),
    /// An error status (and the Allow header of a 405).
    Error(Status, Option<&'static str>),
}

impl Route {
    pub fn is_error(&self) -> bool {
        matches!(self, Route::Error(..))
    }
}

/// Route `method target` (origin-form, RFC 9112 §3.2.1).
pub fn route(method: Method, target: &str, root: Option<&Path>) -> Route {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return Route::Error(Status::BadRequest, None);
    }
    let get = matches!(method, Method::Get | Method::Head);
    const GET_HEAD: Option<&str> = Some("GET, HEAD");
    if path == "/" && root.is_none() {
        return if get {
            Route::Index
        } else {
            Route::Error(Status::MethodNotAllowed, GET_HEAD)
        };
    }
    if let Some(n) = path.strip_prefix("/bytes/") {
        if !get {
            return Route::Error(Status::MethodNotAllowed, GET_HEAD);
        }
        let digits = !n.is_empty()
            && n.len() <= 19
            && n.bytes().all(|b| b.is_ascii_digit())
            && (n == "0" || !n.starts_with('0'));
        return match n.parse::<u64>() {
            Ok(n) if digits && n <= MAX_BYTES => Route::Bytes(n),
            Ok(_) if digits => Route::Error(Status::BadRequest, None),
            _ => Route::Error(Status::NotFound, None),
        };
    }
    if path == "/echo" {
        return if method == Method::Post {
            Route::Echo
        } else {
            Route::Error(Status::MethodNotAllowed, Some("POST"))
        };
    }
    if let Some(root) = root {
        if !get {
            return Route::Error(Status::MethodNotAllowed, GET_HEAD);
        }
        return match files::open(root, path) {
            Some((f, len)) => Route::File(f, len),
            None => Route::Error(Status::NotFound, None),
        };
    }
    Route::Error(Status::NotFound, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(route(Method::Get, "/", None), Route::Index));
        assert!(matches!(route(Method::Head, "/?x=1", None), Route::Index));
        assert!(matches!(
            route(Method::Post, "/", None),
            Route::Error(Status::MethodNotAllowed, Some(_))
        ));
        assert!(matches!(
            route(Method::Get, "/bytes/10", None),
            Route::Bytes(10)
        ));
        assert!(matches!(
            route(Method::Get, "/bytes/0", None),
            Route::Bytes(0)
        ));
        assert!(matches!(
            route(Method::Get, "/bytes/1073741824", None),
            Route::Bytes(MAX_BYTES)
        ));
        assert!(matches!(
            route(Method::Get, "/bytes/1073741825", None),
            Route::Error(Status::BadRequest, _)
        ));
        for bad in [
            "/bytes/x",
            "/bytes/+5",
            "/bytes/05",
            "/bytes/",
            "/bytes/99999999999999999999",
        ] {
            assert!(
                matches!(
                    route(Method::Get, bad, None),
                    Route::Error(Status::NotFound, _)
                ),
                "{bad}"
            );
        }
        assert!(matches!(route(Method::Post, "/echo", None), Route::Echo));
        assert!(matches!(
            route(Method::Get, "/echo", None),
            Route::Error(Status::MethodNotAllowed, Some("POST"))
        ));
        assert!(matches!(
            route(Method::Get, "/nope", None),
            Route::Error(Status::NotFound, _)
        ));
        assert!(matches!(
            route(Method::Get, "*", None),
            Route::Error(Status::BadRequest, _)
        ));
        assert!(matches!(
            route(Method::Other, "/", None),
            Route::Error(Status::MethodNotAllowed, _)
        ));
    }
}
