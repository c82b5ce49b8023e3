"""X's v2 media upload (x-api-facts §2): simple upload, and chunked with STATUS polling.

The sandbox keeps no media bytes, only sizes and the first bytes (to read an image's
type and size, as X reports them). Images are ready at once; GIFs and videos are
"processed": after FINALIZE they are `pending`, the first STATUS poll says
`in_progress`, the next `succeeded` (or `failed`, switch `media_processing`), so a
client's polling loop runs through every state without waiting.
"""
from __future__ import annotations

import base64
import binascii
import struct
from typing import Any

from flask import Blueprint, g, jsonify, request
from flask.typing import ResponseReturnValue

from sandbox.errors import invalid_request, not_found
from sandbox.resource import MEDIA, add_rate_headers, resource
from sandbox.state import Media, World, current_world

bp = Blueprint("media", __name__)
bp.after_request(add_rate_headers)

MB = 1024 * 1024
LIMITS = {"image": 5 * MB, "gif": 15 * MB, "video": 512 * MB, "subtitles": 1 * MB}
CATEGORIES = {"tweet_image": "image", "dm_image": "image", "tweet_gif": "gif", "dm_gif": "gif",
              "tweet_video": "video", "dm_video": "video", "amplify_video": "video", "subtitles": "subtitles"}
MEDIA_TYPES = ("video/mp4", "video/webm", "video/mp2t", "video/quicktime", "text/srt", "text/vtt", "image/jpeg",
               "image/gif", "image/bmp", "image/png", "image/webp", "image/pjpeg", "image/tiff")
EXPIRES_AFTER = 24 * 60 * 60
HEAD_BYTES = 64 * 1024


@bp.post("/2/media/upload")
@resource("POST /2/media/upload", MEDIA)
def simple_upload() -> ResponseReturnValue:
    """One-request upload: multipart `media` + `media_category` (or JSON with base64 `media`)."""
    category, data = _upload_body()
    kind = CATEGORIES[category]
    if len(data) > LIMITS[kind]:
        raise invalid_request(f"File size exceeds {LIMITS[kind] // MB} MB for {category}.",
                              {"media": [f"{len(data)} bytes"]})
    info = image_info(data)
    if kind in ("image", "gif") and info is None:
        raise invalid_request("media type unrecognized.", {"media": ["unrecognized"]})
    world = current_world()
    media = world.add_media(g.user.id, category, info["image_type"] if info else "video/mp4")
    with world.lock:
        media.size, media.total_bytes, media.segments = len(data), len(data), {0: len(data)}
        _finish(world, media, data[:HEAD_BYTES])
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
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise invalid_request("Request body must be a JSON object.")
    allowed = {"media_type", "total_bytes", "media_category", "additional_owners", "shared"}
    for key in body:
        if key not in allowed:
            raise invalid_request(f"$.{key}: is not defined in the schema and the schema does not allow "
                                  "additional properties")
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
    world = current_world()
    media = world.add_media(g.user.id, category, media_type)
    media.total_bytes = total
    return jsonify({"data": {"id": media.id, "media_key": media.media_key, "expires_after_secs": EXPIRES_AFTER}})


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
    """One segment (index 0–999) of a chunked upload."""
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
    world = current_world()
    with world.lock:
        media = _own_upload(world, media_id)
        if media.state != "uploading":
            raise invalid_request("This upload has been finalized already.", {"id": [media_id]})
        media.segments[segment] = len(data)
        if segment == 0:
            media.image = image_info(data[:HEAD_BYTES])
        return jsonify({"data": {"expires_at": int(media.created_at + EXPIRES_AFTER)}})


@bp.post("/2/media/upload/<media_id>/finalize")
@resource("POST /2/media/upload/:id/finalize", MEDIA)
def finalize(media_id: str) -> ResponseReturnValue:
    """End a chunked upload; images are ready, GIFs and videos start processing."""
    world = current_world()
    with world.lock:
        media = _own_upload(world, media_id)
        if media.state != "uploading":
            raise invalid_request("This upload has been finalized already.", {"id": [media_id]})
        size = sum(media.segments.values())
        if size != media.total_bytes or sorted(media.segments) != list(range(len(media.segments))):
            raise invalid_request(f"File size does not match total_bytes: received {size} of "
                                  f"{media.total_bytes} bytes in segments {sorted(media.segments)}",
                                  {"total_bytes": [str(media.total_bytes)]})
        media.size = size
        _finish(world, media, None)
        return jsonify({"data": media_json(world, media)})


@bp.get("/2/media/upload")
@resource("GET /2/media/upload", MEDIA)
def status() -> ResponseReturnValue:
    """`?command=STATUS&media_id=`: where processing is; each poll moves it one step."""
    command, media_id = request.args.get("command", "STATUS"), request.args.get("media_id", "")
    if command != "STATUS":
        raise invalid_request(f"The `command` query parameter value [{command}] is not one of [STATUS]",
                              {"command": [command]})
    world = current_world()
    with world.lock:
        media = _own_upload(world, media_id)
        if media.state == "uploading":
            raise invalid_request("This upload has not been finalized.", {"media_id": [media_id]})
        if media.state == "pending":
            media.state = "in_progress"
        elif media.state == "in_progress":
            media.state = world.options.media_processing
        media.polls += 1
        return jsonify({"data": media_json(world, media)})


def _own_upload(world: World, media_id: str) -> Media:
    """The caller's upload session or media; another user's is as good as unknown."""
    media = world.media.get(media_id)
    if media is None or media.owner_id != g.user.id:
        raise not_found("media", media_id, parameter="media_id")
    return media


def _finish(world: World, media: Media, head: bytes | None) -> None:
    """Images are usable at once; GIFs and videos wait for processing."""
    if head is not None:
        media.image = image_info(head)
    if CATEGORIES[media.category] in ("image", "subtitles"):
        media.state = "succeeded"
    else:
        media.state = "pending"


def media_json(world: World, media: Media) -> dict[str, Any]:
    """X's media object: id, media_key, size, expires_after_secs, image / processing_info."""
    left = max(int(media.created_at + EXPIRES_AFTER - world.now()), 0)
    data: dict[str, Any] = {"id": media.id, "media_key": media.media_key, "size": media.size,
                            "expires_after_secs": left}
    if media.image and CATEGORIES[media.category] == "image":
        data["image"] = dict(media.image)
    if CATEGORIES[media.category] in ("gif", "video"):
        progress = {"pending": 0, "in_progress": 50, "succeeded": 100, "failed": 100}[media.state]
        info: dict[str, Any] = {"state": media.state, "progress_percent": progress}
        if media.state in ("pending", "in_progress"):
            info["check_after_secs"] = 1
        data["processing_info"] = info
        if media.media_type.startswith("video/"):
            data["video"] = {"video_type": media.media_type}
    return data


def image_info(data: bytes) -> dict[str, Any] | None:
    """PNG, GIF or JPEG type and size from the first bytes, or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return {"image_type": "image/png", "w": width, "h": height}
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return {"image_type": "image/gif", "w": width, "h": height}
    if data[:2] == b"\xff\xd8":
        return _jpeg_info(data)
    return None


def _jpeg_info(data: bytes) -> dict[str, Any] | None:
    """Walk the JPEG markers to the first SOF frame, which holds the size."""
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        length = struct.unpack(">H", data[index + 2:index + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[index + 5:index + 9])
            return {"image_type": "image/jpeg", "w": width, "h": height}
        index += 2 + length
    return None
