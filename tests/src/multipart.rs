//! Manual-review applications: multipart forms and photos.

use rand::Rng;

use crate::*;

/// A `multipart/form-data` body, built by hand (the workspace's `reqwest` has no multipart
/// feature, and a hand-built form can also carry what a browser never would).
#[derive(Debug, Clone)]
pub struct MultipartForm {
    boundary: String,
    body: Vec<u8>,
    parts: Vec<String>,
}

impl Default for MultipartForm {
    fn default() -> Self {
        MultipartForm::new()
    }
}

impl MultipartForm {
    /// An empty form with a random boundary.
    pub fn new() -> MultipartForm {
        MultipartForm {
            boundary: format!("shenfen-test-{:016x}", rand::thread_rng().gen::<u64>()),
            body: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// Adds a text field.
    pub fn text(mut self, name: &str, value: &str) -> MultipartForm {
        self.body.extend_from_slice(
            format!("--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n", self.boundary).as_bytes(),
        );
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self.parts.push(format!("{name}={value}"));
        self
    }

    /// Adds a file part.
    pub fn file(mut self, name: &str, filename: &str, content_type: &str, bytes: &[u8]) -> MultipartForm {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self.parts.push(format!("{name}=<{} bytes>", bytes.len()));
        self
    }

    /// The `content-type` header value.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The parts, for messages.
    pub fn describe(&self) -> String {
        self.parts.join(", ")
    }

    /// The body, closed.
    pub fn finish(mut self) -> Vec<u8> {
        self.body.extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        self.body
    }
}

/// A real 1×1 baseline JPEG (the one `api/src/blobs.rs` tests with).
pub const TINY_JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
    0x00, 0xFF, 0xDB, 0x00, 0x43, 0x00, 0x08, 0x06, 0x06, 0x07, 0x06, 0x05, 0x08, 0x07, 0x07, 0x07, 0x09, 0x09, 0x08,
    0x0A, 0x0C, 0x14, 0x0D, 0x0C, 0x0B, 0x0B, 0x0C, 0x19, 0x12, 0x13, 0x0F, 0x14, 0x1D, 0x1A, 0x1F, 0x1E, 0x1D, 0x1A,
    0x1C, 0x1C, 0x20, 0x24, 0x2E, 0x27, 0x20, 0x22, 0x2C, 0x23, 0x1C, 0x1C, 0x28, 0x37, 0x29, 0x2C, 0x30, 0x31, 0x34,
    0x34, 0x34, 0x1F, 0x27, 0x39, 0x3D, 0x38, 0x32, 0x3C, 0x2E, 0x33, 0x34, 0x32, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00,
    0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00, 0xFF, 0xC4, 0x00, 0x1F, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
    0x0A, 0x0B, 0xFF, 0xC4, 0x00, 0xB5, 0x10, 0x00, 0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04,
    0x00, 0x00, 0x01, 0x7D, 0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
    0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0, 0x24, 0x33,
    0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35, 0x36,
    0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
    0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84,
    0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5,
    0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6,
    0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6,
    0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFF, 0xDA, 0x00, 0x08, 0x01,
    0x01, 0x00, 0x00, 0x3F, 0x00, 0xD2, 0xCF, 0x20, 0xFF, 0xD9,
];

/// The first bytes of a PNG file: a picture, but not a JPEG.
pub const PNG_HEADER: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";

/// [`TINY_JPEG`] with comment (COM) segments of `comment` inserted after the start-of-image
/// marker: still a real JPEG, with different bytes for each comment.
pub fn jpeg_with_comment(comment: &[u8]) -> Vec<u8> {
    let mut jpeg = TINY_JPEG[..2].to_vec();
    for chunk in comment.chunks(65_533) {
        jpeg.extend_from_slice(&[0xFF, 0xFE]);
        jpeg.extend_from_slice(&u16::try_from(chunk.len() + 2).unwrap().to_be_bytes());
        jpeg.extend_from_slice(chunk);
    }
    jpeg.extend_from_slice(&TINY_JPEG[2..]);
    jpeg
}

/// A small real JPEG whose bytes name `label`, so that photos can be told apart.
pub fn labelled_jpeg(label: &str) -> Vec<u8> {
    jpeg_with_comment(format!("shenfen test photo {label} {}", next_unique()).as_bytes())
}

/// A real JPEG of exactly `size` bytes (at least [`TINY_JPEG`] and one comment segment),
/// padded with comment segments.
pub fn jpeg_of_size(size: usize) -> Vec<u8> {
    let padding = size.checked_sub(TINY_JPEG.len()).unwrap_or_else(|| panic!("no JPEG of {size} bytes"));
    // Each comment segment costs 4 bytes (marker and length) besides its at most 65 533 bytes.
    let segments = (1..=padding / 4)
        .find(|k| (padding - 4 * k).div_ceil(65_533) == *k)
        .unwrap_or_else(|| panic!("no JPEG of {size} bytes"));
    let jpeg = jpeg_with_comment(&vec![b'x'; padding - 4 * segments]);
    assert_eq!(jpeg.len(), size);
    jpeg
}

/// The three photo parts of an application.
pub const PHOTO_PARTS: [&str; 3] = ["photo_front", "photo_back", "photo_handheld"];

/// A manual-review application; [`ReviewApplication::form`] makes the multipart form. Change
/// fields freely.
#[derive(Debug, Clone)]
pub struct ReviewApplication {
    pub document_type: String,
    pub name: String,
    pub validity_period: String,
    pub validity_start: String,
    /// `(part name, bytes)`, sent in this order; a part left out is not sent.
    pub photos: Vec<(String, Vec<u8>)>,
}

impl ReviewApplication {
    /// An application for the document and validity of `registration`, under `name`, with three
    /// different small JPEGs.
    pub fn for_registration(registration: &Registration, name: &str) -> ReviewApplication {
        ReviewApplication {
            document_type: registration.document_type.clone(),
            name: name.to_string(),
            validity_period: registration.period.clone(),
            validity_start: registration.start.clone(),
            photos: PHOTO_PARTS.iter().map(|part| (part.to_string(), labelled_jpeg(part))).collect(),
        }
    }

    /// The bytes sent as `part`.
    pub fn photo(&self, part: &str) -> &[u8] {
        self.photos.iter().find(|(p, _)| p == part).map(|(_, b)| b.as_slice()).unwrap_or_else(|| panic!("no {part}"))
    }

    /// This application with `part` replaced by `bytes`.
    pub fn with_photo(mut self, part: &str, bytes: Vec<u8>) -> ReviewApplication {
        self.photos.retain(|(p, _)| p != part);
        self.photos.push((part.to_string(), bytes));
        self
    }

    /// This application without `part`.
    pub fn without_photo(mut self, part: &str) -> ReviewApplication {
        self.photos.retain(|(p, _)| p != part);
        self
    }

    /// The multipart form.
    pub fn form(&self) -> MultipartForm {
        let mut form = MultipartForm::new()
            .text("document_type", &self.document_type)
            .text("name", &self.name)
            .text("validity_period", &self.validity_period)
            .text("validity_start", &self.validity_start);
        for (part, bytes) in &self.photos {
            let filename = format!("{}.jpg", part.trim_start_matches("photo_"));
            form = form.file(part, &filename, "image/jpeg", bytes);
        }
        form
    }
}
