//! Serving an upload as an attachment no browser renders.

use axum::http::{header, HeaderMap, HeaderValue};

use super::FileKind;

/// The headers a download is served with: the verified type, an attachment with an
/// RFC 6266 `filename*` (and an ASCII fallback), `nosniff`, a sandboxing CSP, and no
/// caching by shared caches.
///
/// ```
/// use portcullis::upload::{download_headers, FileKind};
///
/// let headers = download_headers(FileKind::Png, "holiday photo.png");
/// assert_eq!(headers["content-type"], "image/png");
/// assert!(headers["content-disposition"].to_str().unwrap().starts_with("attachment;"));
/// assert_eq!(headers["content-security-policy"], "sandbox; default-src 'none'");
/// ```
pub fn download_headers(kind: FileKind, display_name: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind.mime()));
    // The ASCII fallback gets the same guard as the display name: securing
    // `_CON.txt` again would strip the `_` that keeps Windows from opening a device.
    let fallback =
        super::display_name(display_name, usize::MAX).unwrap_or_else(|_| "download".to_owned());
    let encoded =
        percent_encoding::utf8_percent_encode(display_name, percent_encoding::NON_ALPHANUMERIC);
    let disposition = format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}");
    if let Ok(value) = HeaderValue::try_from(disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    } else {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'",
        ),
        (header::CACHE_CONTROL, "private, no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_are_encoded_not_injected() {
        let headers = download_headers(FileKind::Pdf, "report\"; filename=evil.html\r\nX: y.pdf");
        let value = headers["content-disposition"].to_str().unwrap();
        assert!(value.starts_with("attachment; filename=\""), "{value}");
        assert!(!value.contains("filename=evil.html"), "{value}");
        assert!(!value.contains('\r') && !value.contains('\n'));
        let headers = download_headers(FileKind::Png, "фото.png");
        let value = headers["content-disposition"].to_str().unwrap();
        assert!(
            value.contains("filename*=UTF-8''%D1%84%D0%BE%D1%82%D0%BE%2Epng"),
            "{value}"
        );
    }

    #[test]
    fn download_fallback_name_keeps_the_device_name_guard() {
        for (shown, fallback) in [
            ("_CON.txt", "_CON.txt"),
            ("_nul.png", "_nul.png"),
            ("_LPT1", "_LPT1"),
            ("日本.pdf", "pdf"),
        ] {
            let headers = download_headers(FileKind::Pdf, shown);
            let value = headers["content-disposition"].to_str().unwrap();
            assert!(
                value.starts_with(&format!("attachment; filename=\"{fallback}\";")),
                "{value}"
            );
        }
        let headers = download_headers(FileKind::Pdf, "日本");
        let value = headers["content-disposition"].to_str().unwrap();
        assert!(
            value.starts_with("attachment; filename=\"download\";"),
            "{value}"
        );
    }
}
