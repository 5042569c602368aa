"""JSON as Go's encoding/json writes it for dockerd: compact, UTF-8 left
unescaped. The API's replies and streams, the kept `docker ps` entries and
the blobs the engine writes (image configs, manifests) all use it."""
import json


def encode(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
