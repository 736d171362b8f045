//! EXIF orientation: read the tag, turn the pixels upright.

use crate::image::RgbImage;

/// The largest EXIF block read for its orientation: a JPEG APP1 segment's limit. Larger
/// blocks (possible in PNG and WebP) are ignored, not parsed.
pub const MAX_EXIF_BYTES: usize = 64 * 1024;

/// The EXIF Orientation tag (1..=8) from a raw TIFF/EXIF block; 1 when absent, invalid or
/// over [`MAX_EXIF_BYTES`].
pub fn exif_orientation(tiff: &[u8]) -> u16 {
    if tiff.len() > MAX_EXIF_BYTES {
        return 1;
    }
    let Ok(exif) = exif::Reader::new().read_raw(tiff.to_vec()) else {
        return 1;
    };
    exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .filter(|v| (1..=8).contains(v))
        .map(|v| v as u16)
        .unwrap_or(1)
}

/// Returns the image as it is meant to be seen for an EXIF orientation value.
pub fn apply(img: RgbImage, orientation: u16) -> RgbImage {
    if orientation <= 1 || orientation > 8 {
        return img;
    }
    let (w, h) = (img.width as usize, img.height as usize);
    let swaps = orientation >= 5;
    let (dw, dh) = if swaps { (h, w) } else { (w, h) };
    let mut out = vec![0u8; img.data.len()];
    for dy in 0..dh {
        for dx in 0..dw {
            // Source pixel of displayed pixel (dx, dy), per orientation.
            let (sx, sy) = match orientation {
                2 => (w - 1 - dx, dy),
                3 => (w - 1 - dx, h - 1 - dy),
                4 => (dx, h - 1 - dy),
                5 => (dy, dx),
                6 => (dy, h - 1 - dx),
                7 => (w - 1 - dy, h - 1 - dx),
                _ => (w - 1 - dy, dx), // 8
            };
            let s = (sy * w + sx) * 3;
            let d = (dy * dw + dx) * 3;
            out[d..d + 3].copy_from_slice(&img.data[s..s + 3]);
        }
    }
    RgbImage::new(dw as u32, dh as u32, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2x1 image: red at left, blue at right.
    fn strip() -> RgbImage {
        RgbImage::new(2, 1, vec![255, 0, 0, 0, 0, 255])
    }

    #[test]
    fn rotations_put_pixels_where_exif_says() {
        let r6 = apply(strip(), 6); // stored rotated 90 CCW: display turns it clockwise
        assert_eq!((r6.width, r6.height), (1, 2));
        assert_eq!(r6.pixel(0, 0), [255, 0, 0]);
        assert_eq!(r6.pixel(0, 1), [0, 0, 255]);
        let r8 = apply(strip(), 8);
        assert_eq!(r8.pixel(0, 0), [0, 0, 255]);
        let r3 = apply(strip(), 3);
        assert_eq!(r3.pixel(0, 0), [0, 0, 255]);
        let r2 = apply(strip(), 2);
        assert_eq!(r2.pixel(0, 0), [0, 0, 255]);
        assert_eq!(apply(strip(), 1).pixel(0, 0), [255, 0, 0]);
    }

    /// A big-endian TIFF block whose first IFD holds Orientation = 6, then `pad` bytes.
    fn tiff(pad: usize) -> Vec<u8> {
        let mut t = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        t.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
        t.extend_from_slice(&[0; 4]);
        t.resize(t.len() + pad, 0);
        t
    }

    #[test]
    fn exif_is_read_only_up_to_its_bound() {
        assert_eq!(exif_orientation(&tiff(0)), 6);
        assert_eq!(exif_orientation(&tiff(MAX_EXIF_BYTES - 26)), 6);
        assert_eq!(exif_orientation(&tiff(MAX_EXIF_BYTES)), 1);
    }
}
