"""PIE-Bench: read, validate and write the benchmark's on-disk format (no torch needed).

``load(root)`` gives :class:`BenchItem` s; ``export(out)`` writes the world's edits in the same format;
``format`` holds the mask RLE, ids, paths and the mapping file.
"""

from .export import export
from .format import (
    CATEGORIES,
    EDIT_TYPES,
    PIE_BENCH_COUNTS,
    BenchFormatError,
    decode_mask,
    encode_mask,
    image_id,
    image_relpath,
    parse_image_id,
    read_mapping,
    strip_brackets,
    type_folder,
    write_mapping,
)
from .load import BenchItem, load

__all__ = [
    "CATEGORIES",
    "EDIT_TYPES",
    "PIE_BENCH_COUNTS",
    "BenchFormatError",
    "BenchItem",
    "decode_mask",
    "encode_mask",
    "export",
    "image_id",
    "image_relpath",
    "load",
    "parse_image_id",
    "read_mapping",
    "strip_brackets",
    "type_folder",
    "write_mapping",
]
