"""The UART frame protocol, host side, and the parsers of the firmware's text lines.

Host -> firmware, one packet per frame (all integers little-endian):

    offset 0   magic    4 bytes  b"GLTF"
    offset 4   seq      u16      echoed in the answer and as the result's frame number
    offset 6   length   u32      payload bytes; must equal the model's MODEL_INPUT_BYTES
    offset 10  payload  length   the raw uint8 HWC frame
    then       crc      u32      CRC-32 (zlib.crc32, CRC-32/ISO-HDLC) of seq|length|payload

Firmware -> host: text lines, no '=' in any (Robot Framework reads `word=` as a
named argument). After a packet, exactly one of

    ack <seq>                                  then the result line(s) of that frame
    nak <seq> crc <received> <computed>        payload damaged: the host resends
    nak <seq> length <got> expected <want>     wrong size: rejected (the rest is drained)
    nak - timeout                              the packet stopped arriving mid-way

Outside packets the firmware also reads text commands ending in a newline:
`stats` (answers with a stats line) and `ping` (answers `pong`).

The C side lives in firmware_templates/harness/protocol.c.j2 and takes its
constants from template_constants() below, so both ends agree by construction.
"""
from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Protocol, Sequence

MAGIC = b"GLTF"
HEADER = struct.Struct("<4sHI")        # magic, seq, length
CRC = struct.Struct("<I")
# Firmware-side timeouts (milliseconds of the board's clock; virtual time in QEMU).
BYTE_TIMEOUT_MS = 100                  # a started packet that stalls this long is dropped
DRAIN_QUIET_MS = 20                    # after a wrong length: skip input until it is quiet this long
MAX_SEQ = 0xFFFF


class ProtocolError(RuntimeError):
    """The firmware did not answer as the protocol says (or kept refusing a frame)."""


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_frame(payload: bytes, seq: int, *, length: int | None = None,
                 corrupt_payload: bool = False) -> bytes:
    """One packet. `length` overrides the header's length field and `corrupt_payload`
    flips a payload bit after the CRC is computed (both for tests of the NAK paths)."""
    if not 0 <= seq <= MAX_SEQ:
        raise ValueError(f"seq {seq} outside 0..{MAX_SEQ}")
    payload = bytes(payload)
    header = HEADER.pack(MAGIC, seq, len(payload) if length is None else length)
    crc = crc32(header[4:] + payload)
    if corrupt_payload:
        if not payload:
            raise ValueError("cannot corrupt an empty payload")
        damaged = bytearray(payload)
        damaged[len(damaged) // 2] ^= 0x01
        payload = bytes(damaged)
    return header + payload + CRC.pack(crc)


def crc_table() -> list[int]:
    """The byte-wise CRC-32 table (reflected polynomial 0xEDB88320) for the C side."""
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


def template_constants() -> dict:
    """What protocol.c.j2 needs to speak this protocol."""
    return {"magic": list(MAGIC), "byte_timeout_ms": BYTE_TIMEOUT_MS,
            "drain_quiet_ms": DRAIN_QUIET_MS, "crc_table": crc_table()}


# ---------------------------------------------------------------- line parsers

@dataclass(frozen=True)
class FrameResult:
    frame: int
    class_index: int
    class_name: str
    score: float
    cycles: int
    logits_hex: tuple[str, ...]

    @property
    def logits(self) -> list[float]:
        return [struct.unpack("<f", struct.pack("<I", int(h, 16)))[0] for h in self.logits_hex]

    @property
    def logit_bits(self) -> list[int]:
        return [int(h, 16) for h in self.logits_hex]


@dataclass(frozen=True)
class BootInfo:
    board: str
    model: str
    classes: int
    fields: dict = field(default_factory=dict)


_RESULT = re.compile(
    r"^result: frame (\d+) class (\d+) (\S+) score (-?\d+\.\d+) cycles (\d+) logits((?: [0-9a-f]{8})+)$")
_BOOT = re.compile(r"^larq-glt boot: (.*)$")
_NAK = re.compile(r"^nak (\S+) (\w+)(.*)$")
_ACK = re.compile(r"^ack (\d+)$")


def parse_result(line: str) -> FrameResult | None:
    m = _RESULT.match(line.strip())
    if not m:
        return None
    return FrameResult(frame=int(m[1]), class_index=int(m[2]), class_name=m[3],
                       score=float(m[4]), cycles=int(m[5]), logits_hex=tuple(m[6].split()))


def _pairs(text: str) -> dict:
    words = text.split()
    return {words[i]: words[i + 1] for i in range(0, len(words) - 1, 2)}


def parse_boot(line: str) -> BootInfo | None:
    m = _BOOT.match(line.strip())
    if not m:
        return None
    f = _pairs(m[1])
    return BootInfo(board=f.get("board", ""), model=f.get("model", ""),
                    classes=int(f.get("classes", 0)), fields=f)


def parse_stats(line: str) -> dict | None:
    """`stats: frames 4 naks 1 stack_used 612 stack_size 16384` -> {"frames": 4, ...}"""
    line = line.strip()
    if not line.startswith("stats: "):
        return None
    return {k: int(v) for k, v in _pairs(line[len("stats: "):]).items()}


def parse_ops(line: str) -> dict | None:
    """`ops: frame 3 conv1 1200 pool1 300` (GLT_PROFILE builds) -> {"frame": 3, "ops": {...}}"""
    line = line.strip()
    if not line.startswith("ops: frame "):
        return None
    words = line.split()[1:]
    ops = {words[i]: int(words[i + 1]) for i in range(2, len(words) - 1, 2)}
    return {"frame": int(words[1]), "ops": ops}


# ---------------------------------------------------------------- host client

class Transport(Protocol):
    """What the client needs from an emulator session (or a serial port)."""

    def write(self, data: bytes) -> None: ...

    def read_line(self, timeout: float) -> str | None: ...


@dataclass
class FrameClient:
    """Streams frames into a running firmware and collects its answers.

    send() resends on NAK (up to `retries` times) and returns the parsed result.
    Every line seen is kept in `lines`; NAK lines in `naks`.
    """
    transport: Transport
    timeout: float = 30.0          # seconds to wait for each answer line
    retries: int = 3
    lines: list = field(default_factory=list)
    naks: list = field(default_factory=list)

    def _next_line(self, what: str) -> str:
        line = self.transport.read_line(self.timeout)
        if line is None:
            tail = "\n  ".join(self.lines[-10:])
            raise ProtocolError(f"no {what} within {self.timeout:.0f} s; last lines:\n  {tail}")
        self.lines.append(line)
        return line

    def wait_ack(self, seq: int) -> tuple[bool, str]:
        """(True, line) on `ack seq`, (False, line) on a NAK; other lines are skipped."""
        while True:
            line = self._next_line(f"ack/nak for frame {seq}")
            if _ACK.match(line):
                if int(line.split()[1]) != seq:
                    raise ProtocolError(f"ack for frame {line.split()[1]}, expected {seq}")
                return True, line
            if _NAK.match(line):
                self.naks.append(line)
                return False, line

    def wait_result(self, seq: int) -> FrameResult:
        while True:
            line = self._next_line(f"result for frame {seq}")
            res = parse_result(line)
            if res is not None:
                if res.frame != seq:
                    raise ProtocolError(f"result for frame {res.frame}, expected {seq}: {line}")
                return res
            if line.startswith("fatal:"):
                raise ProtocolError(f"firmware failed on frame {seq}: {line}")

    def send(self, frame: bytes, seq: int, *, first_packet: bytes | None = None) -> FrameResult:
        """Send one frame (resending after NAKs) and return its result.
        `first_packet` replaces the first attempt's bytes (tests inject damage this way)."""
        packet = encode_frame(frame, seq)
        attempt = first_packet if first_packet is not None else packet
        for _ in range(self.retries + 1):
            self.transport.write(attempt)
            ok, line = self.wait_ack(seq)
            if ok:
                return self.wait_result(seq)
            attempt = packet
        raise ProtocolError(f"frame {seq} refused {self.retries + 1} times; last answer: {line}")

    def send_raw_expect_nak(self, packet: bytes) -> str:
        """Send a packet that must be refused; return the NAK line."""
        self.transport.write(packet)
        while True:
            line = self._next_line("nak")
            if _NAK.match(line):
                self.naks.append(line)
                return line
            if _ACK.match(line):
                raise ProtocolError(f"firmware accepted a packet it should refuse: {line}")

    def command(self, text: str, prefix: str) -> str:
        """Send a text command (e.g. "stats") and return the first line starting with prefix."""
        self.transport.write(text.encode("ascii") + b"\n")
        while True:
            line = self._next_line(f"answer to {text!r}")
            if line.startswith(prefix):
                return line

    def wait_ops(self, seq: int) -> dict:
        """The `ops:` line (GLT_PROFILE builds) that follows frame seq's result, parsed."""
        while True:
            ops = parse_ops(self._next_line(f"ops line for frame {seq}"))
            if ops is not None:
                return ops

    def stream_profiled(self, frames: Sequence[bytes], first_seq: int = 0) -> tuple[list[FrameResult], list[dict]]:
        """Like stream(), for profiling builds: also each frame's per-op counts."""
        results, ops = [], []
        for i, f in enumerate(frames):
            seq = (first_seq + i) & MAX_SEQ
            results.append(self.send(f, seq))
            ops.append(self.wait_ops(seq)["ops"])
        return results, ops

    def stream(self, frames: Sequence[bytes], first_seq: int = 0) -> list[FrameResult]:
        return [self.send(f, (first_seq + i) & MAX_SEQ) for i, f in enumerate(frames)]
