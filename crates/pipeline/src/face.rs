use serde::{Deserialize, Serialize};

/// An axis-aligned box in pixels: top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl BBox {
    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    pub fn iou(&self, o: &BBox) -> f32 {
        let ix = (self.x + self.width).min(o.x + o.width) - self.x.max(o.x);
        let iy = (self.y + self.height).min(o.y + o.height) - self.y.max(o.y);
        let inter = ix.max(0.0) * iy.max(0.0);
        let union = self.area() + o.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }

    /// The same box in a frame scaled by (sx, sy).
    pub fn scaled(&self, sx: f32, sy: f32) -> BBox {
        BBox {
            x: self.x * sx,
            y: self.y * sy,
            width: self.width * sx,
            height: self.height * sy,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// The five landmarks every supported detector gives, named from the viewer's side of the
/// image (the convention used throughout facelive's API):
/// `left_eye` is the eye on the image's left (the subject's right eye).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Landmarks {
    pub left_eye: Point,
    pub right_eye: Point,
    pub nose: Point,
    pub mouth_left: Point,
    pub mouth_right: Point,
}

impl Landmarks {
    pub fn from_array(p: [Point; 5]) -> Self {
        Self {
            left_eye: p[0],
            right_eye: p[1],
            nose: p[2],
            mouth_left: p[3],
            mouth_right: p[4],
        }
    }

    pub fn points(&self) -> [Point; 5] {
        [
            self.left_eye,
            self.right_eye,
            self.nose,
            self.mouth_left,
            self.mouth_right,
        ]
    }

    pub fn scaled(&self, sx: f32, sy: f32) -> Self {
        Self::from_array(self.points().map(|p| Point {
            x: p.x * sx,
            y: p.y * sy,
        }))
    }
}

/// A detected face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Face {
    #[serde(rename = "box")]
    pub bbox: BBox,
    pub landmarks: Landmarks,
    /// Detection confidence, 0..1.
    pub score: f32,
}

impl Face {
    pub fn scaled(&self, sx: f32, sy: f32) -> Face {
        Face {
            bbox: self.bbox.scaled(sx, sy),
            landmarks: self.landmarks.scaled(sx, sy),
            score: self.score,
        }
    }
}
