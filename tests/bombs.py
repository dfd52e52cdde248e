"""Hostile data files, built in well under a second: archives that decompress to far more than they weigh,
headers that promise more than any machine holds, images that declare a gigapixel.

Long runs of zeros are deflated once, as a block ended by a full flush (which resets the compressor's window,
so the block can be repeated), and repeated: a gigabyte of zeros costs a few hundred kilobytes and no time.
Their checksums are computed without the zeros being generated, by raising CRC-32's one-bit shift to the
power of their length (as zlib's crc32_combine does).
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

_BLOCK = 1 << 20  # zeros per repeated deflate block


def deflate(prefix: bytes, zeros: int) -> bytes:
    """A raw deflate stream of `prefix` followed by `zeros` zero bytes."""
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = [head.compress(prefix), head.flush(zlib.Z_FULL_FLUSH)]
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    repeated = block.compress(bytes(_BLOCK)) + block.flush(zlib.Z_FULL_FLUSH)
    out.append(repeated * (zeros // _BLOCK))
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    out.append(tail.compress(bytes(zeros % _BLOCK)) + tail.flush(zlib.Z_FINISH))
    return b"".join(out)


def _times(matrix: list[int], vector: int) -> int:
    out, i = 0, 0
    while vector:
        if vector & 1:
            out ^= matrix[i]
        vector >>= 1
        i += 1
    return out


def crc32_zeros(crc: int, n: int) -> int:
    """zlib.crc32 of bytes whose CRC is `crc` followed by `n` zero bytes."""
    register = crc ^ 0xFFFFFFFF
    shift = [0xEDB88320] + [1 << i for i in range(31)]  # the register after one more zero bit
    bits = 8 * n
    while bits:
        if bits & 1:
            register = _times(shift, register)
        shift = [_times(shift, column) for column in shift]
        bits >>= 1
    return register ^ 0xFFFFFFFF


def npy_header(shape: tuple[int, ...], dtype: str = "|u1") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def write_zip(path: Path, members: list[tuple[str, bytes, int, int]]) -> None:
    """A zip file of deflated members: (name, raw deflate stream, its CRC-32, the size the archive declares it
    inflates to)."""
    local, central = bytearray(), bytearray()
    for name, data, crc, size in members:
        offset = len(local)
        encoded = name.encode()
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), size, len(encoded), 0)
        local += encoded + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(data), size,
                               len(encoded), 0, 0, 0, 0, 0, offset) + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0)
    path.write_bytes(bytes(local) + bytes(central) + end)


def npz_bomb(path: Path, n: int, size: int = 8, *, declared_x: int | None = None) -> Path:
    """A `.npz` whose x is n zero images of size x size (uint8) and whose y holds n labels 0, 1, 2, 0, 0, ...;
    it weighs a few hundred kilobytes whatever n is. `declared_x`: what the archive says x inflates to, when it
    is to disagree with x's own header."""
    x_header, y_header = npy_header((n, size, size)), npy_header((n,), "|i1")
    x_size = len(x_header) + n * size * size
    y_start = y_header + b"\x00\x01\x02"
    write_zip(path, [("x.npy", deflate(x_header, n * size * size), crc32_zeros(zlib.crc32(x_header), n * size * size),
                      x_size if declared_x is None else declared_x),
                     ("y.npy", deflate(y_start, n - 3), crc32_zeros(zlib.crc32(y_start), n - 3), len(y_header) + n)])
    return path


def gzip_zeros(prefix: bytes, zeros: int) -> bytes:
    """A gzip file of `prefix` followed by `zeros` zero bytes."""
    crc = crc32_zeros(zlib.crc32(prefix), zeros)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + deflate(prefix, zeros)
            + struct.pack("<II", crc, (len(prefix) + zeros) & 0xFFFFFFFF))


def idx_header(type_code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height grey pixels and holds almost none of them: opening it reads the size,
    decoding it would need width x height bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(width + 1)))
            + chunk(b"IEND", b""))


def capped(code: str, cwd: Path, limit_bytes: int = 1 << 30, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run Python `code` in a fresh interpreter whose address space is capped at `limit_bytes` (RLIMIT_AS), so
    that a reader allocating what a hostile file declares fails there instead of passing unnoticed."""
    prelude = ("import resource\n"
               f"resource.setrlimit(resource.RLIMIT_AS, ({limit_bytes}, {limit_bytes}))\n")
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
           "PYTHONHASHSEED": "0", **{k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "HOME", "TMPDIR")}}
    # standard input is /dev/null, so that `/dev/stdin` names a device whatever ran the tests
    return subprocess.run([sys.executable, "-c", prelude + code], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)
