"""Local files are read through the size cap, never whole: memory does not depend on the file's size, for
a huge text file, a huge JSON Lines line or a WARC record larger than the cap."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import pytest

from tasks.fetch import fetch_source
from tasks.settings import Settings
from tasks.sources import parse_sources

CAP = 1_000_000
BIG = 150_000_000  # bytes: what the process would hold (several times, decoded) if the file were read whole

# Runs in a fresh process: its peak RSS is its own, not the test session's.
MEASURE = textwrap.dedent("""
    import json, resource, sys
    from tasks.fetch import fetch_source
    from tasks.settings import Settings
    from tasks.sources import parse_sources
    kind, path = sys.argv[1], sys.argv[2]
    source = parse_sources([{"name": "s", "kind": kind, "path": path}])[0]
    settings = Settings(max_response_bytes=int(sys.argv[3]))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome = fetch_source(source, settings)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"grew_kb": after - before, "documents": len(outcome.documents),
                      "reasons": [r.reasons[0] for r in outcome.rejections]}))
""")


def _measure(kind: str, path) -> dict:
    result = subprocess.run([sys.executable, "-c", MEASURE, kind, str(path), str(CAP)], capture_output=True, text=True,
                            timeout=300, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_huge_file_is_refused_without_being_read(tmp_path):
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as stream:  # sparse: costs no disk
        stream.truncate(3_000_000_000)
    small = tmp_path / "small.txt"
    small.write_text("a short text " * 50)
    measured = _measure("files", tmp_path / "*.txt")
    assert measured["documents"] == 1
    assert measured["reasons"] == [f"too large: over {CAP} bytes"]
    assert measured["grew_kb"] < 50_000


def test_a_huge_json_lines_line_is_refused_and_the_lines_after_it_are_read(tmp_path):
    path = tmp_path / "records.jsonl"
    with path.open("w") as stream:
        stream.write(json.dumps({"text": "before " * 20}) + "\n")
        stream.write('{"text": "' + "x" * BIG + '"}\n')
        stream.write(json.dumps({"text": "after " * 20}) + "\n")
    measured = _measure("files", path)
    assert measured["documents"] == 2
    assert measured["reasons"] == [f"line 2 is over {CAP} bytes"]
    assert measured["grew_kb"] < 50_000


def test_a_warc_record_larger_than_the_cap_is_refused_and_the_next_record_read(tmp_path):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path = tmp_path / "big.warc.gz"
    with path.open("wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        for name, body in (("big", b"<p>" + b"x" * BIG + b"</p>"), ("small", b"<p>a small page</p>")):
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(f"https://warc.example/{name}", "response",
                                                          payload=io.BytesIO(body), http_headers=headers))
    measured = _measure("warc", path)
    assert measured["documents"] == 1
    assert measured["reasons"] == [f"too large: over {CAP} bytes"]
    assert measured["grew_kb"] < 50_000


@pytest.mark.parametrize("suffix", [".txt", ".json"])
def test_a_file_at_the_cap_is_read_and_one_byte_over_is_not(tmp_path, suffix):
    text = json.dumps({"text": "word " * 10}) if suffix == ".json" else "word " * 10
    at_cap = tmp_path / f"at{suffix}"
    at_cap.write_text(text)
    over = tmp_path / f"over{suffix}"
    over.write_text(text + " ")
    settings = Settings(max_response_bytes=len(text.encode()))
    outcome = fetch_source(parse_sources([{"name": "s", "kind": "files", "path": str(tmp_path / "*")}])[0],
                           settings)
    assert [d.url.rsplit("/", 1)[1].split("#")[0] for d in outcome.documents] == [f"at{suffix}"]
    assert [r.reasons[0] for r in outcome.rejections] == [f"too large: over {len(text.encode())} bytes"]
