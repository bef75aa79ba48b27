"""The handlers of examples/text-pipeline: plain functions of the payload."""

import re


def normalize(payload):
    """Lower-case the text and collapse its whitespace."""
    return {"text": " ".join(str(payload["text"]).lower().split())}


def tokenize(payload):
    """Split the text into words."""
    return {**payload, "tokens": re.findall(r"[a-z0-9']+", payload["text"])}


def count(payload):
    """Count the words, most frequent first (ties in alphabetical order)."""
    counts = {}
    for t in payload["tokens"]:
        counts[t] = counts.get(t, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"text": payload["text"], "words": len(payload["tokens"]), "counts": dict(ranked)}
