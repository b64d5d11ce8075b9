//! The enrolment QR code, as SVG.

/// `url` (an `otpauth://` URL) as a QR code in a standalone SVG document, black on
/// white with a quiet zone, at least 200 px square: serve it as `image/svg+xml` from
/// a route of its own (with `Cache-Control: no-store`: it holds the secret), so that
/// the page shows it with an `<img>` that `img-src 'self'` allows, and no inline
/// markup is needed.
///
/// `None` when the text is too long for a QR code.
///
/// ```
/// let svg = portcullis::totp::qr_svg("otpauth://totp/Site:alice?secret=JBSWY3DPEHPK3PXP").unwrap();
/// assert!(svg.contains("<svg"));
/// assert!(!svg.contains("<script"));
/// ```
pub fn qr_svg(url: &str) -> Option<String> {
    use qrcode::render::svg;
    let code =
        qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn too_long_a_text_is_none_not_a_panic() {
        assert!(super::qr_svg(&"x".repeat(10_000)).is_none());
        let svg = super::qr_svg("otpauth://totp/a:b?secret=AAAA").unwrap();
        assert!(svg.starts_with("<?xml"));
    }
}
