"""Damage in picture data that Pillow decodes without a word: why a JPEG or PNG is damaged, or None.

Pillow raises on what libjpeg and zlib call errors, but decodes a JPEG whose
entropy-coded data is corrupt with only a libjpeg warning ("Corrupt JPEG
data: ..."), which Pillow does not expose, and a PNG whose compressed data
is corrupt without checking its checksums: a photo with garbage bytes in its
middle decodes with visible damage, and training would learn from it. So,
after a clean decode (`images`), a PNG's chunk checksums are checked
(Pillow's `verify`), and a sequential Huffman JPEG's entropy-coded data is
walked (ITU T.81): every Huffman code must exist, no block may run past 64
coefficients, restart markers must come in order, and each scan must hold
exactly its blocks (no block needing bits past its end, no more than a few
stray bytes after the last). Progressive and arithmetic-coded JPEGs are not
walked. No library does this walk (libjpeg only warns; OpenCV prints it);
it is pure Python and numpy, ~15 ms for a 256-px face and about a second at
12 megapixels, so each file is checked once per process.
"""

import os
import warnings

import numpy as np
from PIL import Image

# Files found intact, by (device, inode, size, modification time): each is checked once
# per process, however often training reads it. Bounded; cleared when full.
_INTACT: set[tuple[int, int, int, int]] = set()
_INTACT_MAX = 1_000_000


def problem(path, image_format: str | None) -> str | None:
    """Why the JPEG or PNG at `path` is damaged, or None (intact, or a format not checked).

    Called after a clean decode: what Pillow raises on is the reader's
    "unreadable" refusal. Raises FileNotFoundError or PermissionError as
    opening the file does.
    """
    if image_format not in ("JPEG", "MPO", "PNG"):
        return None
    info = os.stat(path)
    key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    if key in _INTACT:
        return None
    try:
        if image_format == "PNG":
            with warnings.catch_warnings():  # the size was judged by the decode
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                warnings.simplefilter("ignore", UserWarning)  # metadata complaints
                with Image.open(path) as im:
                    im.verify()  # every chunk's CRC, to the end of the file
            found = None
        else:
            with open(path, "rb") as f:
                found = _jpeg_damage(f.read())
    except (FileNotFoundError, PermissionError):
        raise
    except Exception as e:  # Pillow's verify raises SyntaxError, OSError, struct.error...
        found = str(e).splitlines()[0][:100] if str(e) else e.__class__.__name__
    if found:
        return found
    if len(_INTACT) >= _INTACT_MAX:
        _INTACT.clear()
    _INTACT.add(key)
    return None


# --- JPEG entropy-coded data (ITU T.81, sequential Huffman: SOF0, SOF1) -----------

_HUFFMAN_PRIMARY_BITS = 9  # codes up to this long are found in one look-up
_HUFFMAN_TABLES: dict[bytes, tuple] = {}
# Whole bytes after a scan's last block that are tolerated: some encoders write
# a stray byte or two, which libjpeg reports but decodes past unharmed.
_STRAY_BYTES = 3
# Past a segment's end a block reads zero bits, as libjpeg does; no block of
# 64 codes of at most 16 + 15 bits reads more than this many bytes.
_PADDING = 260


class _Damaged(Exception):
    """The entropy-coded data is not what its headers describe; the message says how."""


def _jpeg_damage(data: bytes) -> str | None:
    """Why the sequential Huffman JPEG `data` is damaged, or None (intact, or not walked).

    Only called on data Pillow decoded cleanly, so headers are sound; a header
    this walk does not follow (progressive, arithmetic coding, a height given
    by a DNL marker, a table it lacks) leaves the file to Pillow's judgement.
    """
    try:
        return _walk_jpeg(data)
    except _Damaged as e:
        return str(e)
    except (IndexError, KeyError, ValueError, ZeroDivisionError):
        return None


def _walk_jpeg(data: bytes) -> str | None:
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    pos, tables, frame, restart = 2, {}, None, 0
    while True:
        if pos >= n:
            raise _Damaged("no end marker")
        if data[pos] != 0xFF:
            raise _Damaged("stray bytes where a marker belongs")
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            raise _Damaged("no end marker")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # end of image: whatever follows is not this picture's
            return None
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            raise _Damaged("a restart marker outside the image data")
        length = (data[pos] << 8) | data[pos + 1]
        segment = data[pos + 2 : pos + length]
        if length < 2 or len(segment) != length - 2:
            raise _Damaged("a marker segment cut short")
        pos += length
        if marker == 0xC4:  # Huffman tables
            i = 0
            while i < len(segment):
                counts = segment[i + 1 : i + 17]
                total = sum(counts)
                table = _huffman_table(counts, segment[i + 17 : i + 17 + total])
                tables[(segment[i] >> 4, segment[i] & 15)] = table
                i += 17 + total
        elif marker == 0xDD:  # restart interval
            restart = (segment[0] << 8) | segment[1]
        elif marker in (0xC0, 0xC1):  # baseline, extended sequential Huffman
            height, width = (segment[1] << 8) | segment[2], (segment[3] << 8) | segment[4]
            components = {
                segment[6 + 3 * c]: (segment[7 + 3 * c] >> 4, segment[7 + 3 * c] & 15)
                for c in range(segment[5])
            }
            frame = (width, height, components)
        elif 0xC2 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return None  # progressive, lossless or arithmetic-coded: not walked
        elif marker == 0xDA:  # start of scan
            if frame is None or frame[1] == 0:  # height 0: given later by a DNL marker
                return None
            scan = [
                (segment[1 + 2 * j], segment[2 + 2 * j] >> 4, segment[2 + 2 * j] & 15)
                for j in range(segment[0])
            ]
            pos = _walk_scan(data, pos, frame, scan, tables, restart)


def _walk_scan(data: bytes, pos: int, frame, scan, tables, restart: int) -> int:
    """Check one scan's entropy-coded data from `pos`; returns the position of the marker after it."""
    width, height, components = frame
    hmax = max(h for h, _ in components.values())
    vmax = max(v for _, v in components.values())
    if len(scan) == 1:  # one component: its blocks one by one
        h, v = components[scan[0][0]]
        columns = -(-(-(-width * h // hmax)) // 8)
        rows = -(-(-(-height * v // vmax)) // 8)
        mcus, blocks = columns * rows, [scan[0][1:]]
    else:  # interleaved: each MCU holds h x v blocks of each component
        mcus = -(-width // (8 * hmax)) * -(-height // (8 * vmax))
        blocks = []
        for component, dc, ac in scan:
            h, v = components[component]
            blocks += [(dc, ac)] * (h * v)
    blocks = [(tables[(0, dc)], tables[(1, ac)]) for dc, ac in blocks]
    stream = np.frombuffer(data, np.uint8, offset=pos)
    ff = np.flatnonzero(stream[:-1] == 0xFF)
    following = stream[ff + 1]
    is_restart = (following >= 0xD0) & (following <= 0xD7)
    stops = ff[(following != 0) & ~is_restart]
    end = int(stops[0]) if len(stops) else len(stream)
    restarts = ff[is_restart]
    restarts = restarts[restarts < end]
    intervals = -(-mcus // restart) if restart else 1
    if len(restarts) != intervals - 1:
        raise _Damaged(f"{len(restarts)} restart markers where {intervals - 1} belong")
    for i, at in enumerate(restarts):
        if stream[at + 1] != 0xD0 + i % 8:
            raise _Damaged("restart markers out of order")
    bounds = [0, *(int(at) + 2 for at in restarts), end + 2]
    left = mcus
    for i in range(intervals):
        chunk = stream[bounds[i] : bounds[i + 1] - 2]
        stuffed = np.flatnonzero((chunk[1:] == 0) & (chunk[:-1] == 0xFF)) + 1
        count = min(restart, left) if restart else mcus
        stray = _walk_interval(np.delete(chunk, stuffed), count, blocks)
        if stray > _STRAY_BYTES:
            raise _Damaged(f"{stray} bytes of image data after its last block")
        left -= count
    return pos + end


def _walk_interval(coded: np.ndarray, mcus: int, blocks) -> int:
    """Decode `mcus` MCUs of Huffman codes (values skipped); returns the whole bytes left over."""
    nbits = 8 * len(coded)
    padded = np.zeros(len(coded) + _PADDING, np.uint32)
    padded[: len(coded)] = coded
    # 32 bits from every byte on: the next 16 bits at bit p are one shift of window[p >> 3].
    window = (padded[:-3] << 24) | (padded[1:-2] << 16) | (padded[2:-1] << 8) | padded[3:]
    window = window.tolist()
    slow = _slow_code
    p = 0
    for _ in range(mcus):
        for dc, ac in blocks:
            dc_lookup, ac_lookup = dc[0], ac[0]
            bits = (window[p >> 3] >> (16 - (p & 7))) & 0xFFFF
            entry = dc_lookup[bits >> 7]
            if entry < 0:
                entry = slow(bits, dc)
            size = entry & 255
            if size > 15:
                raise _Damaged("a DC difference out of range")
            p += (entry >> 8) + size
            k = 1
            while k < 64:
                bits = (window[p >> 3] >> (16 - (p & 7))) & 0xFFFF
                entry = ac_lookup[bits >> 7]
                if entry < 0:
                    entry = slow(bits, ac)
                symbol = entry & 255
                size = symbol & 15
                if size:
                    k += (symbol >> 4) + 1
                    p += (entry >> 8) + size
                elif symbol == 0xF0:  # sixteen zeros
                    k += 16
                    p += entry >> 8
                else:  # end of block
                    p += entry >> 8
                    break
            if k > 64:
                raise _Damaged("a block of more than 64 coefficients")
            if p > nbits:
                raise _Damaged("image data ends before its last block")
    return (nbits - p) // 8


def _huffman_table(counts: bytes, symbols: bytes) -> tuple:
    """(look-up of the codes up to 9 bits, max code per length, offset per length, symbols)."""
    key = bytes(counts) + bytes(symbols)
    table = _HUFFMAN_TABLES.get(key)
    if table is not None:
        return table
    lookup = [-1] * (1 << _HUFFMAN_PRIMARY_BITS)
    max_code, offset = [-1] * 17, [0] * 17
    code = k = 0
    for length in range(1, 17):
        if counts[length - 1]:
            offset[length] = k - code
            for _ in range(counts[length - 1]):
                if length <= _HUFFMAN_PRIMARY_BITS:
                    shift = _HUFFMAN_PRIMARY_BITS - length
                    entry = (length << 8) | symbols[k]
                    lookup[code << shift : (code + 1) << shift] = [entry] * (1 << shift)
                code += 1
                k += 1
            max_code[length] = code - 1
        code <<= 1
    table = (lookup, max_code, offset, bytes(symbols))
    if len(_HUFFMAN_TABLES) >= 256:
        _HUFFMAN_TABLES.clear()
    _HUFFMAN_TABLES[key] = table
    return table


def _slow_code(bits: int, table: tuple) -> int:
    """The (length << 8 | symbol) of a code longer than the look-up's, from the next 16 `bits`."""
    _, max_code, offset, symbols = table
    for length in range(_HUFFMAN_PRIMARY_BITS + 1, 17):
        code = bits >> (16 - length)
        if code <= max_code[length]:
            return (length << 8) | symbols[code + offset[length]]
    raise _Damaged("a Huffman code its tables do not hold")
