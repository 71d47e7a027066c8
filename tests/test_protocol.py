"""Frame protocol: host encoder/parsers, and the firmware's C side compiled natively
(harness main.c + protocol.c + console.c with a stdin/stdout stand-in board)."""
import random
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from deploy.emulators import protocol
from deploy.firmware.harness import HarnessOptions, render_harness
from tests.fixtures.stub_model.reference import stub_reference

STUB = Path(__file__).parent / "fixtures" / "stub_model"
FRAME_BYTES = 16 * 16 * 3


def test_encode_frame_layout():
    payload = bytes(range(10))
    pkt = protocol.encode_frame(payload, 0x1234)
    magic, seq, length = struct.unpack_from("<4sHI", pkt)
    assert (magic, seq, length) == (b"GLTF", 0x1234, 10)
    assert pkt[10:20] == payload
    (crc,) = struct.unpack_from("<I", pkt, 20)
    assert crc == zlib.crc32(pkt[4:20])
    assert len(pkt) == 24


def test_encode_frame_damage_options():
    payload = bytes(range(10))
    good = protocol.encode_frame(payload, 1)
    bad = protocol.encode_frame(payload, 1, corrupt_payload=True)
    assert bad[-4:] == good[-4:] and bad[10:20] != good[10:20]     # CRC of the original payload
    short = protocol.encode_frame(payload, 1, length=99)
    assert struct.unpack_from("<I", short, 6)[0] == 99
    with pytest.raises(ValueError):
        protocol.encode_frame(payload, 70000)


def test_crc_table_matches_zlib():
    table = protocol.crc_table()

    def crc(data):
        c = 0xFFFFFFFF
        for b in data:
            c = table[(c ^ b) & 0xFF] ^ (c >> 8)
        return c ^ 0xFFFFFFFF

    data = random.Random(3).randbytes(1000)
    assert crc(data) == protocol.crc32(data) == zlib.crc32(data)


def test_parse_lines():
    r = protocol.parse_result("result: frame 3 class 1 person score 0.810 cycles 123456 logits 3f800000 bf800000")
    assert (r.frame, r.class_index, r.class_name, r.score, r.cycles) == (3, 1, "person", 0.81, 123456)
    assert r.logits == [1.0, -1.0] and r.logit_bits == [0x3F800000, 0xBF800000]
    assert protocol.parse_result("result: frame 3 class 1") is None
    b = protocol.parse_boot("larq-glt boot: board nucleo model vww classes 2 input 96x96x3 arena 1000")
    assert (b.board, b.model, b.classes, b.fields["arena"]) == ("nucleo", "vww", 2, "1000")
    assert protocol.parse_stats("stats: frames 4 naks 1 stack_used 600 stack_size 16384") == {
        "frames": 4, "naks": 1, "stack_used": 600, "stack_size": 16384}
    assert protocol.parse_ops("ops: frame 2 conv1 100 pool 20") == {"frame": 2, "ops": {"conv1": 100, "pool": 20}}


class ScriptedTransport:
    """Answers like the firmware: NAK the first packet of each seq listed in `nak_first`."""

    def __init__(self, nak_first=()):
        self.nak_first = set(nak_first)
        self.out = []
        self.sent = []

    def write(self, data):
        self.sent.append(data)
        magic, seq, length = struct.unpack_from("<4sHI", data)
        if seq in self.nak_first:
            self.nak_first.discard(seq)
            self.out += [f"nak {seq} crc 00000000 11111111"]
        else:
            self.out += [f"ack {seq}", f"result: frame {seq} class 0 bg score 1.000 cycles 5 logits 00000000"]

    def read_line(self, timeout):
        return self.out.pop(0) if self.out else None


def test_client_resends_after_nak():
    t = ScriptedTransport(nak_first=[1])
    c = protocol.FrameClient(t, timeout=1)
    results = c.stream([b"a" * 4, b"b" * 4])
    assert [r.frame for r in results] == [0, 1]
    assert len(t.sent) == 3 and t.sent[1] == t.sent[2]
    assert c.naks == ["nak 1 crc 00000000 11111111"]


def test_client_gives_up_and_reports():
    class AlwaysNak(ScriptedTransport):
        def write(self, data):
            self.out.append("nak 0 crc 00000000 11111111")
    c = protocol.FrameClient(AlwaysNak(), timeout=1, retries=2)
    with pytest.raises(protocol.ProtocolError, match="refused 3 times"):
        c.send(b"x", 0)
    silent = protocol.FrameClient(ScriptedTransport(), timeout=0.01)
    silent.transport.write = lambda data: None
    with pytest.raises(protocol.ProtocolError, match="no ack/nak"):
        silent.send(b"x", 0)


# ------------------------------------------------------- the C side, built natively

@pytest.fixture(scope="module")
def host_harness(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("host gcc not installed")
    out = render_harness("mps2-an500", tmp_path_factory.mktemp("h") / "build",
                         model_sources={"model.c": STUB / "model.c", "model.h": STUB / "model.h",
                                        "host_board.c": STUB / "host_board.c"},
                         model_name="stub", frame_source="uart",
                         options=HarnessOptions(stats_every=0))
    exe = out / "harness_host"
    srcs = ["main.c", "console.c", "protocol.c", "frames.c", "model.c", "host_board.c"]
    subprocess.run([gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-I.", "-o", exe.name, *srcs, "-lm"],
                   cwd=out, check=True)
    return exe


def run_host(exe, data: bytes) -> list[str]:
    proc = subprocess.run([str(exe)], input=data, capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode().splitlines()


def test_host_harness_answers_frames_naks_and_commands(host_harness):
    rng = random.Random(7)
    frames = [rng.randbytes(FRAME_BYTES) for _ in range(3)]
    stream = (protocol.encode_frame(frames[0], 10)
              + b"ping\n"
              + protocol.encode_frame(frames[1], 11, corrupt_payload=True)
              + protocol.encode_frame(frames[1], 11)
              + b"stats\n"
              + protocol.encode_frame(frames[2][:-1], 12))     # wrong size: drained, refused
    lines = run_host(host_harness, stream)
    assert lines[0].startswith("larq-glt boot: board mps2-an500 model stub classes 2 input 16x16x3 arena 12")
    results = [protocol.parse_result(l) for l in lines if l.startswith("result:")]
    assert [r.frame for r in results] == [10, 11]
    for r, f in zip(results, frames):
        cls, bits, score = stub_reference(f)
        assert (r.class_index, r.logit_bits) == (cls, bits)
        assert abs(r.score - score) < 0.0015
    assert "pong" in lines
    naks = [l for l in lines if l.startswith("nak")]
    assert naks == [naks[0], f"nak 12 length {FRAME_BYTES - 1} expected {FRAME_BYTES}"]
    assert naks[0].split()[:3] == ["nak", "11", "crc"]
    assert protocol.parse_stats([l for l in lines if l.startswith("stats:")][0])["naks"] == 1
    # the LED follows the positive class (1) frame by frame
    leds = [l for l in lines if l.startswith("led:")]
    assert leds == [f"led: {int(r.class_index == 1)}" for r in results]
    assert lines.index("ack 10") < lines.index(next(l for l in lines if l.startswith("result: frame 10")))


def test_host_harness_crc_nak_reports_both_crcs(host_harness):
    frame = bytes(FRAME_BYTES)
    good = protocol.encode_frame(frame, 5)
    bad = protocol.encode_frame(frame, 5, corrupt_payload=True)
    (lines,) = [[l for l in run_host(host_harness, bad) if l.startswith("nak")]]
    received = struct.unpack("<I", good[-4:])[0]
    computed = protocol.crc32(bad[4:-4])
    assert lines == [f"nak 5 crc {received:08x} {computed:08x}"]


def test_host_harness_truncated_packet_times_out(host_harness):
    pkt = protocol.encode_frame(bytes(FRAME_BYTES), 3)
    for cut in (6, 8, 100, len(pkt) - 2):            # in the header, the payload, the CRC
        lines = run_host(host_harness, pkt[:cut])
        assert "nak - timeout" in lines, (cut, lines)
        assert not any(l.startswith("ack") for l in lines)


def test_host_harness_resyncs_after_garbage(host_harness):
    frame = random.Random(1).randbytes(FRAME_BYTES)
    lines = run_host(host_harness, b"GLT\x00GGL\xffhello\n" + protocol.encode_frame(frame, 9))
    # printable bytes up to the newline are one (unknown) command; the others are dropped
    assert "error: unknown command GLTGGLhello" in lines
    (r,) = [protocol.parse_result(l) for l in lines if l.startswith("result:")]
    assert (r.frame, r.logit_bits) == (9, stub_reference(frame)[1])
