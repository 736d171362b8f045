//! Recognise the format from the bytes, never from a file name or a content type.

use crate::error::PipelineError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Png,
    Jpeg,
    Webp,
    Gif,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Png => "PNG",
            Format::Jpeg => "JPEG",
            Format::Webp => "WebP",
            Format::Gif => "GIF",
        }
    }
}

/// The formats one API accepts: each vendor documents its own (NHN and SpoofSense PNG and
/// JPEG, JCV adds GIF); facelive's own API takes all it decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats(&'static [Format]);

impl Formats {
    pub const ALL: Formats = Formats(&[Format::Jpeg, Format::Png, Format::Webp, Format::Gif]);
    pub const PNG_JPEG: Formats = Formats(&[Format::Jpeg, Format::Png]);
    pub const PNG_JPEG_GIF: Formats = Formats(&[Format::Jpeg, Format::Png, Format::Gif]);

    pub fn contains(self, f: Format) -> bool {
        self.0.contains(&f)
    }

    /// The formats in the set, as their names (`PNG`, `JPEG`, ...).
    pub fn names(self) -> Vec<&'static str> {
        self.0.iter().map(|f| f.name()).collect()
    }

    /// The refusal of `found`, naming what the set takes.
    pub fn refuse(self, found: &str) -> PipelineError {
        PipelineError::UnsupportedFormat {
            found: found.to_string(),
            accepted: self.names().join(", "),
        }
    }
}

impl Default for Formats {
    fn default() -> Self {
        Self::ALL
    }
}

/// Signatures of formats we refuse by name, so the error says what was sent.
const REFUSED: &[(&[u8], usize, &str)] = &[
    (b"II*\0", 0, "TIFF"),
    (b"MM\0*", 0, "TIFF"),
    (b"ftypheic", 4, "HEIC"),
    (b"ftypheix", 4, "HEIC"),
    (b"ftypmif1", 4, "HEIF"),
    (b"ftypavif", 4, "AVIF"),
    (b"\0\0\x01\0", 0, "ICO"),
    (b"8BPS", 0, "PSD"),
    (b"\xff\x0a", 0, "JPEG XL"),
    (b"\0\0\0\x0cJXL ", 0, "JPEG XL"),
    (b"%PDF", 0, "PDF"),
];

pub fn sniff(bytes: &[u8]) -> Result<Format, PipelineError> {
    if bytes.is_empty() {
        return Err(PipelineError::EmptyInput);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(Format::Png);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok(Format::Gif);
    }
    if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        return Ok(Format::Webp);
    }
    for (sig, at, name) in REFUSED {
        if bytes.len() >= at + sig.len() && &bytes[*at..at + sig.len()] == *sig {
            return Err(Formats::ALL.refuse(name));
        }
    }
    if is_bmp(bytes) {
        return Err(Formats::ALL.refuse("BMP"));
    }
    Err(PipelineError::NotAnImage {
        found: describe_non_image(bytes).into(),
    })
}

/// "BM" alone is too weak a signature (text can start with it): check the DIB header size.
fn is_bmp(b: &[u8]) -> bool {
    b.len() >= 18
        && b.starts_with(b"BM")
        && matches!(
            u32::from_le_bytes([b[14], b[15], b[16], b[17]]),
            12 | 40 | 52 | 56 | 64 | 108 | 124
        )
}

fn describe_non_image(bytes: &[u8]) -> &'static str {
    let head = &bytes[..bytes.len().min(512)];
    let text = std::str::from_utf8(head).map(|s| s.to_ascii_lowercase());
    match text {
        Ok(t) if t.trim_start().starts_with("<!doctype html") || t.contains("<html") => {
            "an HTML document"
        }
        Ok(t) if t.trim_start().starts_with('{') || t.trim_start().starts_with('[') => {
            "JSON or other text"
        }
        Ok(_) => "text",
        Err(_) => "unrecognised binary data",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_it_refuses() {
        assert_eq!(sniff(b"GIF89a\x01\x00\x01\x00").unwrap(), Format::Gif);
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 ").unwrap(), Format::Webp);
        let tiff = sniff(b"II*\0\x08\0\0\0").unwrap_err();
        assert!(
            matches!(tiff, PipelineError::UnsupportedFormat { ref found, .. } if found == "TIFF")
        );
        let text = sniff(b"BMW is a car maker").unwrap_err();
        assert_eq!(text.code(), "not_an_image");
        assert_eq!(sniff(b"").unwrap_err().code(), "empty_input");
        assert_eq!(sniff(b"\xff\xd8\xff\xe0").unwrap(), Format::Jpeg);
    }
}
