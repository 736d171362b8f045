//! The OpenAPI 3.1 description of every endpoint, served at `/openapi.json`.

use serde_json::{json, Value};

fn error_ref() -> Value {
    json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn json_body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

pub fn document() -> Value {
    let image_source = json!({
        "type": "object",
        "description": "exactly one of base64 and url",
        "properties": {
            "base64": {"type": "string", "description": "PNG or JPEG bytes, standard base64 (a data: URI prefix is accepted)"},
            "url": {"type": "string", "format": "uri", "description": "http(s) URL on port 80, 443 or 10000-12000; private, loopback and link-local addresses are refused"}
        }
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "facelive",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-hosted passive face liveness: one image in, a verdict on its largest face out. The native API exposes everything; the NHN, Accura, JCV and SpoofSense dialects answer in their vendors' shapes."
        },
        "paths": {
            "/v1/liveness": {"post": {
                "summary": "Native API: judge the largest face",
                "description": "Authorization: Bearer <key>. JSON or multipart (file field `image`, text fields `operating_point`, `threshold`, `auto_rotate`). `outcome` is live, spoof, or retry (the image cannot be judged: no face, failed quality check).",
                "requestBody": {"required": true, "content": {
                    "application/json": {"schema": {"type": "object", "required": ["image"], "properties": {
                        "image": image_source,
                        "operating_point": {"enum": ["weak", "balanced", "strict"], "default": "balanced"},
                        "threshold": {"type": "number", "minimum": 0, "maximum": 1, "description": "overrides operating_point"},
                        "auto_rotate": {"type": "boolean", "default": true, "description": "apply the EXIF orientation"}
                    }}},
                    "multipart/form-data": {"schema": {"type": "object", "required": ["image"], "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "operating_point": {"type": "string"}, "threshold": {"type": "string"}, "auto_rotate": {"type": "string"}
                    }}}
                }},
                "responses": {
                    "200": {"description": "verdict", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Verdict"}}}},
                    "400": error_ref(), "401": error_ref(), "413": error_ref(), "415": error_ref(),
                    "422": error_ref(), "500": error_ref(), "503": error_ref()
                }
            }},
            "/v1.0/appkeys/{appKey}/spoofing": {"post": {
                "summary": "NHN Cloud Face Liveness dialect",
                "description": "Authorization: <secretKey>. Every face is reported; spoofing is true for an attack; confidence is the detection confidence; coordinates are fractions of the image size. Errors carry NHN result codes (-40000, -41005, -45020, -45030, -45040, -45050, -45060, -50000).",
                "parameters": [{"name": "appKey", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {
                    "application/json": {"schema": {"type": "object", "properties": {
                        "image": {"type": "object", "properties": {"url": {"type": "string"}, "bytes": {"type": "string"}}},
                        "spoofingCondition": {"enum": ["weak", "balanced", "strict"]}
                    }}},
                    "multipart/form-data": {"schema": {"type": "object", "properties": {
                        "imageFile": {"type": "string", "format": "binary"}, "spoofingCondition": {"type": "string"}
                    }}}
                }},
                "responses": {"200": {"description": "header {isSuccessful, resultCode, resultMessage} and data {faceDetailCount, faceDetails[{bbox {x0,y0,x1,y1}, landmarks [{type, x, y}], spoofing, confidence}]}"}}
            }},
            "/v2/api/liveness": {"post": {
                "summary": "Accura Scan dialect",
                "description": "Api-Key header; multipart file field liveness_image, at most 1 MB. liveness_score in percent; above 55 is live.",
                "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"type": "object", "required": ["liveness_image"], "properties": {"liveness_image": {"type": "string", "format": "binary"}}}}}},
                "responses": {"200": {"description": "{status: success, message, request_id, liveness_score, threshold: 55, liveness_status: live|spoof|retry, retry_reason}"}, "4XX": {"description": "{status: error, error_code, message, request_id}"}}
            }},
            "/v1/jcv/liveness": {"post": {
                "summary": "JCV Liveness dialect",
                "description": "X-API-Key header. images[0] (index 0, type RGB, data base64) is analysed; later items are ignored. autoRotate applies the EXIF orientation.",
                "requestBody": json_body(json!({"type": "object", "required": ["images"], "properties": {
                    "images": {"type": "array", "items": {"type": "object", "required": ["index", "type", "data"], "properties": {
                        "index": {"type": "integer"}, "type": {"const": "RGB"}, "data": {"type": "string"}}}},
                    "autoRotate": {"type": "boolean", "default": false}
                }})),
                "responses": {"200": {"description": "{status: ok|retry, score, live, threshold: 0.5, position {top, left, width, height}, model {name, version}, retry_reason, request_id}"}, "4XX": {"description": "{status: error, error {code, message}, request_id}"}}
            }},
            "/antispoofing": {"post": {
                "summary": "SpoofSense dialect (threshold 0.55)",
                "description": "x-api-key header. Bodies over 10 MB get 413.",
                "requestBody": json_body(json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "string"}}})),
                "responses": {"200": {"description": "{success, message, model_output {pred_idx: real|spoof, prob_real}} or {success: false, error_code}"}}
            }},
            "/robust": {"post": {
                "summary": "SpoofSense dialect for low-quality captures (threshold 0.50)",
                "requestBody": json_body(json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "string"}}})),
                "responses": {"200": {"description": "as /antispoofing"}}
            }},
            "/health": {"get": {"summary": "the process is up", "responses": {"200": {"description": "{status: ok}"}}}},
            "/ready": {"get": {"summary": "models loaded and warm", "responses": {"200": {"description": "ready"}, "503": {"description": "warming up"}}}},
            "/info": {"get": {"summary": "version, model pack, thresholds per operating point, dialects", "responses": {"200": {"description": "info"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics: requests by dialect and outcome, latency per stage", "responses": {"200": {"description": "text exposition format"}}}}
        },
        "components": {"schemas": {
            "Error": {"type": "object", "properties": {
                "request_id": {"type": "string"},
                "error": {"type": "object", "properties": {"code": {"type": "string", "description": "stable machine-readable code"}, "message": {"type": "string"}}}
            }},
            "Box": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}, "width": {"type": "number"}, "height": {"type": "number"}}},
            "Verdict": {"type": "object", "properties": {
                "request_id": {"type": "string"},
                "outcome": {"enum": ["live", "spoof", "retry"]},
                "retry_reason": {"type": ["string", "null"], "description": "no_face or the name of the failed enforced quality check"},
                "live_score": {"type": ["number", "null"]},
                "threshold": {"type": "number"},
                "operating_point": {"type": ["string", "null"]},
                "model_pack": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}}},
                "face": {"type": ["object", "null"], "properties": {
                    "box": {"$ref": "#/components/schemas/Box"},
                    "box_fraction": {"type": "object", "properties": {"x0": {"type": "number"}, "y0": {"type": "number"}, "x1": {"type": "number"}, "y1": {"type": "number"}}},
                    "landmarks": {"type": "object", "description": "left_eye, right_eye, nose, mouth_left, mouth_right as {x, y} pixels; left = the image's left"},
                    "detection_score": {"type": "number"},
                    "live_score": {"type": ["number", "null"]}
                }},
                "other_faces": {"type": "array"},
                "per_model": {"type": "array", "items": {"type": "object", "properties": {"model": {"type": "string"}, "live_score": {"type": "number"}}}},
                "quality": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string", "description": "image_size, face_size, face_padding, face_share, eye_distance, yaw, pitch, roll, brightness, exposure, sharpness, face_count"}, "value": {"type": "number"}, "min": {"type": ["number", "null"]}, "max": {"type": ["number", "null"]}, "pass": {"type": "boolean"}, "policy": {"enum": ["off", "warn", "enforce"]}, "hint": {"type": "string"}}}},
                "image": {"type": "object"},
                "timings": {"type": "object", "properties": {"decode_ms": {"type": "number"}, "detect_ms": {"type": "number"}, "judge_ms": {"type": "number"}, "total_ms": {"type": "number"}}}
            }}
        }}
    })
}
