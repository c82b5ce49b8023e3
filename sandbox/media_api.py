"""X's v2 media upload (x-api-facts §2): simple and chunked upload, STATUS polling, alt text.

Every endpoint needs the `media.write` scope. Images keep their bytes (at most 5 MB, so
the timeline page can show them); GIFs and videos keep sizes and the first bytes, enough
to name their type. Images are ready at once; GIFs and videos are "processed": after
FINALIZE they are `pending`. With `media_processing_seconds` 0 (the default) the first
STATUS poll says `in_progress` and the next `succeeded`, so a client's polling loop runs
through every state without waiting; with N > 0 they are `succeeded` once N seconds of
sandbox clock have passed since FINALIZE, as at X. `media_processing` makes every
GIF/video (`failed`) or only the next one (`fail_next`) fail, with X's `error` object.
The uploads and their processing live in `sandbox/upload_sessions.py`; these views check the
requests, call it, and render the copy of the media it hands back as X's media object.
"""
from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

from flask import Blueprint, g, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox.errors import invalid_request, json_type
from sandbox.records import MEDIA_KINDS, MEDIA_LIFETIME, Media
from sandbox.resource import MEDIA, add_rate_headers, resource
from sandbox.sniff import image_info, video_type
from sandbox.state import World, current_world
from sandbox.upload_sessions import UNRECOGNIZED

bp = Blueprint("media", __name__)
bp.after_request(add_rate_headers)

MB = 1024 * 1024
LIMITS = {"image": 5 * MB, "gif": 15 * MB, "video": 512 * MB, "subtitles": 1 * MB}
CATEGORIES = MEDIA_KINDS
MEDIA_TYPES = ("video/mp4", "video/webm", "video/mp2t", "video/quicktime", "text/srt", "text/vtt", "image/jpeg",
               "image/gif", "image/bmp", "image/png", "image/webp", "image/pjpeg", "image/tiff")
EXPIRES_AFTER = MEDIA_LIFETIME
ALT_TEXT_LIMIT = 1000
# X's STATUS error for media it cannot process (v1.1 docs' example; the 2.167 spec omits it).
PROCESSING_ERROR = {"code": 1, "name": "InvalidMedia", "message": "Unsupported video format"}
# CreateMediaMetadataMetadata's properties in spec 2.167; anything else is refused.
METADATA_FIELDS = frozenset({
    "allow_download_status", "alt_text", "audience_policy", "content_expiration", "domain_restrictions",
    "found_media_origin", "geo_restrictions", "management_info", "preview_image", "sensitive_media_warning",
    "shared_info", "sticker_info", "upload_source",
})
_MEDIA_ID = re.compile(r"^[0-9]{1,19}$")


@bp.post("/2/media/upload")
@resource("POST /2/media/upload", MEDIA)
def simple_upload() -> ResponseReturnValue:
    """One-request upload: multipart `media` + `media_category` (or JSON with base64 `media`)."""
    category, data = _upload_body()
    kind = CATEGORIES[category]
    if len(data) > LIMITS[kind]:
        raise invalid_request(f"File size exceeds {LIMITS[kind] // MB} MB for {category}.",
                              {"media": [f"{len(data)} bytes"]})
    media_type = _sniff(kind, data)
    world = current_world()
    media = world.uploads.upload(g.user.id, category, media_type, data)
    return jsonify({"data": media_json(world, media)})


def _upload_body() -> tuple[str, bytes]:
    """(media_category, bytes) from a multipart or JSON simple-upload request."""
    if request.is_json:
        body = request.get_json(silent=True) or {}
        category, raw = body.get("media_category"), body.get("media")
        data = _b64(raw, "media") if isinstance(raw, str) else None
    else:
        category = request.form.get("media_category")
        upload = request.files.get("media")
        data = upload.read() if upload else None
    if data is None:
        raise invalid_request("$.media: is missing but it is required", {"media": []})
    if category not in CATEGORIES:
        raise invalid_request(f"$.media_category: does not have a value in the enumeration {sorted(CATEGORIES)}",
                              {"media_category": [str(category)]})
    return category, data


def _sniff(kind: str, data: bytes) -> str:
    """The media type read from the bytes (never from a name); X's 400 when they are no known type."""
    if kind == "subtitles":
        return "text/srt"
    found = video_type(data) if kind == "video" else (image_info(data) or {}).get("image_type")
    if found is None:
        raise invalid_request(UNRECOGNIZED, {"media": ["unrecognized"]})
    return str(found)


def _b64(raw: str, name: str) -> bytes:
    """Decode a base64 JSON field, or answer a parameter error."""
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_request(f"$.{name}: is not valid base64", {name: ["invalid"]}) from None


@bp.post("/2/media/upload/initialize")
@resource("POST /2/media/upload/initialize", MEDIA)
def initialize() -> ResponseReturnValue:
    """Start a chunked upload: `media_type`, `total_bytes`, `media_category`."""
    body = _json_object()
    _only_known("$", body, {"media_type", "total_bytes", "media_category", "additional_owners", "shared"})
    media_type, total = body.get("media_type"), body.get("total_bytes")
    category = body.get("media_category") or _default_category(media_type)
    if media_type not in MEDIA_TYPES:
        raise invalid_request(f"$.media_type: does not have a value in the enumeration {list(MEDIA_TYPES)}",
                              {"media_type": [str(media_type)]})
    if category not in CATEGORIES:
        raise invalid_request("$.media_category: does not have a value in the enumeration",
                              {"media_category": [str(category)]})
    kind = CATEGORIES[category]
    if not isinstance(total, int) or isinstance(total, bool) or not 0 < total <= LIMITS[kind]:
        raise invalid_request(f"$.total_bytes: must be between 1 and {LIMITS[kind]} for {category}",
                              {"total_bytes": [str(total)]})
    media = current_world().uploads.start(g.user.id, category, media_type, total)
    return jsonify({"data": {"id": media.id, "media_key": media.media_key, "expires_after_secs": EXPIRES_AFTER}})


def _json_object() -> dict[str, Any]:
    """The request's JSON object, or X's 400."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise invalid_request("Request body must be a JSON object.")
    return body


def _only_known(path: str, value: dict[str, Any], allowed: set[str] | frozenset[str]) -> None:
    """Refuse a key outside `allowed` in X's schema-validator words."""
    for key in value:
        if key not in allowed:
            raise invalid_request(f"{path}.{key}: is not defined in the schema and the schema does not allow "
                                  "additional properties")


def _default_category(media_type: Any) -> str:
    """X's category for a media type when none is given."""
    if media_type == "image/gif":
        return "tweet_gif"
    if isinstance(media_type, str) and media_type.startswith("video/"):
        return "tweet_video"
    return "tweet_image"


@bp.post("/2/media/upload/<media_id>/append")
@resource("POST /2/media/upload/:id/append", MEDIA)
def append(media_id: str) -> ResponseReturnValue:
    """One segment (index 0–999) of a chunked upload; sending an index again replaces it."""
    segment, data = _segment()
    media = current_world().uploads.append(g.user.id, media_id, segment, data)
    return jsonify({"data": {"expires_at": int(media.expires_at)}})


def _segment() -> tuple[int, bytes]:
    """(segment_index, bytes) of an APPEND request, multipart or JSON with base64 `media`."""
    if request.is_json:
        body = request.get_json(silent=True) or {}
        raw, index = body.get("media"), body.get("segment_index")
        data = _b64(raw, "media") if isinstance(raw, str) else None
    else:
        upload = request.files.get("media")
        data = upload.read() if upload else (request.form.get("media", "").encode() or None)
        index = request.form.get("segment_index")
    try:
        segment = int(index)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        segment = -1
    if not 0 <= segment <= 999:
        raise invalid_request("$.segment_index: must be between 0 and 999", {"segment_index": [str(index)]})
    if data is None:
        raise invalid_request("$.media: is missing but it is required", {"media": []})
    return segment, data


@bp.post("/2/media/upload/<media_id>/finalize")
@resource("POST /2/media/upload/:id/finalize", MEDIA)
def finalize(media_id: str) -> ResponseReturnValue:
    """End a chunked upload; images are ready, GIFs and videos start processing."""
    world = current_world()
    media = world.uploads.finalize(g.user.id, media_id)
    return jsonify({"data": media_json(world, media)})


@bp.get("/2/media/upload")
@resource("GET /2/media/upload", MEDIA)
def status() -> ResponseReturnValue:
    """`?command=STATUS&media_id=`: where processing is (see the module docstring)."""
    command, media_id = request.args.get("command", "STATUS"), request.args.get("media_id", "")
    if command != "STATUS":
        raise invalid_request(f"The `command` query parameter value [{command}] is not one of [STATUS]",
                              {"command": [command]})
    world = current_world()
    media = world.uploads.status(g.user.id, media_id)
    return jsonify({"data": media_json(world, media)})


@bp.post("/2/media/metadata")
@resource("POST /2/media/metadata", MEDIA)
def metadata() -> ResponseReturnValue:
    """Alt text (`CreateMediaMetadataRequest`): `{"id", "metadata": {"alt_text": {"text"}}}`, ≤ 1,000 characters."""
    body = _json_object()
    _only_known("$", body, {"id", "metadata"})
    media_id = body.get("id")
    if "id" not in body:
        raise invalid_request("$.id: is missing but it is required", {"id": []})
    if not isinstance(media_id, str) or not _MEDIA_ID.match(media_id):
        raise invalid_request("$.id: does not match the regex pattern ^[0-9]{1,19}$", {"id": [str(media_id)]})
    meta = body.get("metadata", {})
    if not isinstance(meta, dict):
        raise invalid_request(f"$.metadata: {json_type(meta)} found, object expected")
    _only_known("$.metadata", meta, METADATA_FIELDS)
    alt_text = _alt_text(meta.get("alt_text"))
    media = current_world().uploads.set_alt_text(g.user.id, media_id, alt_text)
    return jsonify({"data": {"id": media.id, "associated_metadata": meta}})


def _alt_text(value: Any) -> str | None:
    """The alt text of a metadata request (None when absent), checked as X's schema does."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_request(f"$.metadata.alt_text: {json_type(value)} found, object expected")
    _only_known("$.metadata.alt_text", value, {"text"})
    text = value.get("text")
    if "text" not in value:
        raise invalid_request("$.metadata.alt_text.text: is missing but it is required")
    if not isinstance(text, str):
        raise invalid_request(f"$.metadata.alt_text.text: {json_type(text)} found, string expected")
    if len(text) > ALT_TEXT_LIMIT:
        raise invalid_request(f"$.metadata.alt_text.text: may only be {ALT_TEXT_LIMIT} characters long",
                              {"metadata.alt_text.text": [f"{len(text)} characters"]})
    return text


def media_json(world: World, media: Media) -> dict[str, Any]:
    """X's media object: id, media_key, size, expires_after_secs, image / processing_info / video."""
    left = max(math.ceil(media.expires_at - world.now()), 0)
    data: dict[str, Any] = {"id": media.id, "media_key": media.media_key, "size": media.size,
                            "expires_after_secs": left}
    if media.image and media.kind == "image":
        data["image"] = dict(media.image)
    if media.kind in ("gif", "video"):
        data["processing_info"] = _processing_info(world, media)
    if media.kind == "video":
        data["video"] = {"video_type": media.video_type or media.media_type}
    return data


def _processing_info(world: World, media: Media) -> dict[str, Any]:
    """`state`, `progress_percent`, `check_after_secs` while processing, X's `error` when failed."""
    info: dict[str, Any] = {"state": media.state, "progress_percent": _percent(world, media)}
    if media.state in ("pending", "in_progress"):
        left = (media.ready_at - world.now()) if media.ready_at is not None else 1.0
        info["check_after_secs"] = max(1, math.ceil(left))
    elif media.state == "failed":
        info["error"] = dict(PROCESSING_ERROR)
    return info


def _percent(world: World, media: Media) -> int:
    """How far processing is: by steps, or by the share of the processing time gone."""
    if media.state in ("succeeded", "failed"):
        return 100
    if media.state == "pending":
        return 0
    if media.ready_at is None or media.finalized_at is None:
        return 50
    total = max(media.ready_at - media.finalized_at, 1e-9)
    return min(99, int(100 * (world.now() - media.finalized_at) / total))
